import { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1795649577869 implements MigrationInterface {
  name = 'Init1795649577869';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"local_keys\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"label\" varchar(200) NOT NULL, \"public_key_spki\" text NOT NULL, \"ciphertext\" text NOT NULL, \"created_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE TABLE \"authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32))");
    await queryRunner.query("CREATE INDEX \"idx_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
    await queryRunner.query("CREATE TABLE \"certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\" (\"authority_id\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\" (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" (\"thing_name\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\" (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\" (\"issued_at\", \"id\") ");
    await queryRunner.query("CREATE TABLE \"crls\" (\"authority_id\" varchar(36) NOT NULL, \"crl_number\" integer NOT NULL, \"this_update\" varchar(32) NOT NULL, \"next_update\" varchar(32) NOT NULL, \"revocations_covered\" integer NOT NULL, \"der\" text NOT NULL, PRIMARY KEY (\"authority_id\", \"crl_number\"))");
    await queryRunner.query("CREATE TABLE \"api_keys\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"role\" varchar(16) NOT NULL, \"prefix\" varchar(32) NOT NULL, \"secret_hash\" varchar(64) NOT NULL, \"created_at\" varchar(32) NOT NULL, \"created_by\" varchar(64), \"revoked_at\" varchar(32))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_api_keys_prefix\" ON \"api_keys\" (\"prefix\") ");
    await queryRunner.query("CREATE TABLE \"audit_events\" (\"seq\" integer PRIMARY KEY NOT NULL, \"occurred_at\" varchar(32) NOT NULL, \"actor_type\" varchar(32) NOT NULL, \"actor_id\" varchar(128), \"actor_role\" varchar(32), \"action\" varchar(64) NOT NULL, \"target_type\" varchar(32), \"target_id\" varchar(128), \"request_id\" varchar(128), \"source_ip\" varchar(64), \"details\" text NOT NULL, \"prev_hash\" varchar(64) NOT NULL, \"hash\" varchar(64) NOT NULL)");
    await queryRunner.query("CREATE INDEX \"idx_audit_target\" ON \"audit_events\" (\"target_id\", \"seq\") ");
    await queryRunner.query("CREATE INDEX \"idx_audit_action\" ON \"audit_events\" (\"action\", \"seq\") ");
    await queryRunner.query("CREATE TABLE \"audit_head\" (\"id\" integer PRIMARY KEY NOT NULL, \"seq\" integer NOT NULL, \"hash\" varchar(64) NOT NULL)");
    // The audit chain head starts at the genesis hash (seq 0); appends lock and advance this row.
    await queryRunner.query("INSERT INTO \"audit_head\" (\"id\", \"seq\", \"hash\") VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE \"audit_head\"");
    await queryRunner.query("DROP INDEX \"idx_audit_action\"");
    await queryRunner.query("DROP INDEX \"idx_audit_target\"");
    await queryRunner.query("DROP TABLE \"audit_events\"");
    await queryRunner.query("DROP INDEX \"uq_api_keys_prefix\"");
    await queryRunner.query("DROP TABLE \"api_keys\"");
    await queryRunner.query("DROP TABLE \"crls\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_issued\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_authority\"");
    await queryRunner.query("DROP TABLE \"certificates\"");
    await queryRunner.query("DROP INDEX \"idx_authorities_public_key\"");
    await queryRunner.query("DROP TABLE \"authorities\"");
    await queryRunner.query("DROP TABLE \"local_keys\"");
  }
}
