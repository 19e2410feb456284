import { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795649577869 implements MigrationInterface {
  name = 'Init1795649577869';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"local_keys\" (\"id\" character varying(36) NOT NULL, \"key_spec\" character varying(16) NOT NULL, \"label\" character varying(200) NOT NULL, \"public_key_spki\" text NOT NULL, \"ciphertext\" text NOT NULL, \"created_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_75dbc83e6472a1b50c57c2a99b9\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE TABLE \"authorities\" (\"id\" character varying(36) NOT NULL, \"name\" character varying(200) NOT NULL, \"type\" character varying(16) NOT NULL, \"parent_id\" character varying(36), \"status\" character varying(16) NOT NULL, \"key_backend\" character varying(16) NOT NULL, \"key_spec\" character varying(16) NOT NULL, \"key_ref\" character varying(2048) NOT NULL, \"public_key_sha256\" character varying(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" character varying(64) NOT NULL, \"fingerprint\" character varying(64) NOT NULL, \"path_length\" integer, \"not_before\" character varying(32) NOT NULL, \"not_after\" character varying(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT '0', \"revocation_count\" integer NOT NULL DEFAULT '0', \"created_at\" character varying(32) NOT NULL, \"disabled_at\" character varying(32), CONSTRAINT \"PK_10bd95b9548629cdf02016dab65\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_authorities_public_key\" ON \"authorities\"  (\"public_key_sha256\") ");
    await queryRunner.query("CREATE TABLE \"certificates\" (\"id\" character varying(36) NOT NULL, \"authority_id\" character varying(36) NOT NULL, \"serial\" character varying(64) NOT NULL, \"fingerprint\" character varying(64) NOT NULL, \"profile\" character varying(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" character varying(128), \"status\" character varying(16) NOT NULL, \"not_before\" character varying(32) NOT NULL, \"not_after\" character varying(32) NOT NULL, \"issued_at\" character varying(32) NOT NULL, \"public_key_sha256\" character varying(64) NOT NULL, \"key_description\" character varying(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT false, \"revoked_at\" character varying(32), \"revocation_reason\" character varying(32), CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"), CONSTRAINT \"PK_e4c7e31e2144300bea7d89eb165\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\"  (\"authority_id\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\"  (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\"  (\"thing_name\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\"  (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\"  (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\"  (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\"  (\"issued_at\", \"id\") ");
    await queryRunner.query("CREATE TABLE \"crls\" (\"authority_id\" character varying(36) NOT NULL, \"crl_number\" integer NOT NULL, \"this_update\" character varying(32) NOT NULL, \"next_update\" character varying(32) NOT NULL, \"revocations_covered\" integer NOT NULL, \"der\" text NOT NULL, CONSTRAINT \"PK_6c04349c6057a53a85e28d9971e\" PRIMARY KEY (\"authority_id\", \"crl_number\"))");
    await queryRunner.query("CREATE TABLE \"api_keys\" (\"id\" character varying(36) NOT NULL, \"name\" character varying(200) NOT NULL, \"role\" character varying(16) NOT NULL, \"prefix\" character varying(32) NOT NULL, \"secret_hash\" character varying(64) NOT NULL, \"created_at\" character varying(32) NOT NULL, \"created_by\" character varying(64), \"revoked_at\" character varying(32), CONSTRAINT \"PK_5c8a79801b44bd27b79228e1dad\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_api_keys_prefix\" ON \"api_keys\"  (\"prefix\") ");
    await queryRunner.query("CREATE TABLE \"audit_events\" (\"seq\" integer NOT NULL, \"occurred_at\" character varying(32) NOT NULL, \"actor_type\" character varying(32) NOT NULL, \"actor_id\" character varying(128), \"actor_role\" character varying(32), \"action\" character varying(64) NOT NULL, \"target_type\" character varying(32), \"target_id\" character varying(128), \"request_id\" character varying(128), \"source_ip\" character varying(64), \"details\" text NOT NULL, \"prev_hash\" character varying(64) NOT NULL, \"hash\" character varying(64) NOT NULL, CONSTRAINT \"PK_6e299f5706e715265416fefe53e\" PRIMARY KEY (\"seq\"))");
    await queryRunner.query("CREATE INDEX \"idx_audit_target\" ON \"audit_events\"  (\"target_id\", \"seq\") ");
    await queryRunner.query("CREATE INDEX \"idx_audit_action\" ON \"audit_events\"  (\"action\", \"seq\") ");
    await queryRunner.query("CREATE TABLE \"audit_head\" (\"id\" integer NOT NULL, \"seq\" integer NOT NULL, \"hash\" character varying(64) NOT NULL, CONSTRAINT \"PK_d3ed64edb3e208e83ccb5da589a\" PRIMARY KEY (\"id\"))");
    // The audit chain head starts at the genesis hash (seq 0); appends lock and advance this row.
    await queryRunner.query("INSERT INTO \"audit_head\" (\"id\", \"seq\", \"hash\") VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE \"audit_head\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_audit_action\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_audit_target\"");
    await queryRunner.query("DROP TABLE \"audit_events\"");
    await queryRunner.query("DROP INDEX \"public\".\"uq_api_keys_prefix\"");
    await queryRunner.query("DROP TABLE \"api_keys\"");
    await queryRunner.query("DROP TABLE \"crls\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_issued\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"public\".\"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_authority\"");
    await queryRunner.query("DROP TABLE \"certificates\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_authorities_public_key\"");
    await queryRunner.query("DROP TABLE \"authorities\"");
    await queryRunner.query("DROP TABLE \"local_keys\"");
  }
}
