import { MigrationInterface, QueryRunner } from 'typeorm';

export class RotationAndOcsp1795662690640 implements MigrationInterface {
  name = 'RotationAndOcsp1795662690640';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"ocsp_signers\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"key_ref\" varchar(64) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"created_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE INDEX \"idx_ocsp_signers_authority\" ON \"ocsp_signers\" (\"authority_id\", \"not_after\") ");
    await queryRunner.query("CREATE TABLE \"rotation_campaigns\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"status\" varchar(16) NOT NULL, \"reason\" varchar(500) NOT NULL, \"selector\" text NOT NULL, \"deadline\" varchar(32) NOT NULL, \"on_deadline\" varchar(16) NOT NULL, \"notify\" varchar(16), \"total\" integer NOT NULL, \"iot_job_id\" varchar(64), \"created_at\" varchar(32) NOT NULL, \"closed_at\" varchar(32))");
    await queryRunner.query("CREATE TABLE \"rotation_campaign_members\" (\"campaign_id\" varchar(36) NOT NULL, \"certificate_id\" varchar(36) NOT NULL, \"thing_name\" varchar(128), \"state\" varchar(16) NOT NULL, \"renewed_by_id\" varchar(36), \"updated_at\" varchar(32) NOT NULL, PRIMARY KEY (\"campaign_id\", \"certificate_id\"))");
    await queryRunner.query("CREATE INDEX \"idx_rotation_members_certificate\" ON \"rotation_campaign_members\" (\"certificate_id\") ");
    await queryRunner.query("CREATE INDEX \"idx_rotation_members_state\" ON \"rotation_campaign_members\" (\"campaign_id\", \"state\", \"certificate_id\") ");
    await queryRunner.query("DROP INDEX \"uq_authorities_public_key\"");
    await queryRunner.query("CREATE TABLE \"temporary_authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32), \"usage\" varchar(16) NOT NULL DEFAULT ('devices'), \"successor_id\" varchar(36), \"retiring_at\" varchar(32))");
    await queryRunner.query("INSERT INTO \"temporary_authorities\"(\"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\") SELECT \"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\" FROM \"authorities\"");
    await queryRunner.query("DROP TABLE \"authorities\"");
    await queryRunner.query("ALTER TABLE \"temporary_authorities\" RENAME TO \"authorities\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
    await queryRunner.query("DROP INDEX \"idx_certificates_claim\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_issued\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_authority\"");
    await queryRunner.query("CREATE TABLE \"temporary_certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), \"iot_status\" varchar(16) NOT NULL DEFAULT ('none'), \"iot_last_error\" text, \"iot_thing\" text, \"claim_id\" varchar(36), \"replaces_id\" varchar(36), \"replaced_by_id\" varchar(36), \"superseded_at\" varchar(32), CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("INSERT INTO \"temporary_certificates\"(\"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\", \"iot_thing\", \"claim_id\") SELECT \"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\", \"iot_thing\", \"claim_id\" FROM \"certificates\"");
    await queryRunner.query("DROP TABLE \"certificates\"");
    await queryRunner.query("ALTER TABLE \"temporary_certificates\" RENAME TO \"certificates\"");
    await queryRunner.query("CREATE INDEX \"idx_certificates_claim\" ON \"certificates\" (\"claim_id\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\" (\"issued_at\", \"id\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\" (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" (\"thing_name\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\" (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\" (\"authority_id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"idx_certificates_authority\"");
    await queryRunner.query("DROP INDEX \"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_issued\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_claim\"");
    await queryRunner.query("ALTER TABLE \"certificates\" RENAME TO \"temporary_certificates\"");
    await queryRunner.query("CREATE TABLE \"certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), \"iot_status\" varchar(16) NOT NULL DEFAULT ('none'), \"iot_last_error\" text, \"iot_thing\" text, \"claim_id\" varchar(36), CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("INSERT INTO \"certificates\"(\"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\", \"iot_thing\", \"claim_id\") SELECT \"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\", \"iot_thing\", \"claim_id\" FROM \"temporary_certificates\"");
    await queryRunner.query("DROP TABLE \"temporary_certificates\"");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\" (\"authority_id\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\" (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" (\"thing_name\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\" (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\" (\"issued_at\", \"id\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_claim\" ON \"certificates\" (\"claim_id\") ");
    await queryRunner.query("DROP INDEX \"uq_authorities_public_key\"");
    await queryRunner.query("ALTER TABLE \"authorities\" RENAME TO \"temporary_authorities\"");
    await queryRunner.query("CREATE TABLE \"authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32), \"usage\" varchar(16) NOT NULL DEFAULT ('devices'))");
    await queryRunner.query("INSERT INTO \"authorities\"(\"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\") SELECT \"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\" FROM \"temporary_authorities\"");
    await queryRunner.query("DROP TABLE \"temporary_authorities\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
    await queryRunner.query("DROP INDEX \"idx_rotation_members_state\"");
    await queryRunner.query("DROP INDEX \"idx_rotation_members_certificate\"");
    await queryRunner.query("DROP TABLE \"rotation_campaign_members\"");
    await queryRunner.query("DROP TABLE \"rotation_campaigns\"");
    await queryRunner.query("DROP INDEX \"idx_ocsp_signers_authority\"");
    await queryRunner.query("DROP TABLE \"ocsp_signers\"");
  }
}
