import { MigrationInterface, QueryRunner } from 'typeorm';

export class FactoryClaims1795660765928 implements MigrationInterface {
  name = 'FactoryClaims1795660765928';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"claims\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"factory\" varchar(200) NOT NULL, \"line\" varchar(200), \"status\" varchar(16) NOT NULL, \"claim_authority_id\" varchar(36) NOT NULL, \"device_authority_id\" varchar(36) NOT NULL, \"profile\" varchar(32) NOT NULL, \"validity_days\" integer, \"max_devices\" integer NOT NULL, \"used\" integer NOT NULL DEFAULT (0), \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"serial_pattern\" varchar(256), \"thing_name_template\" varchar(128) NOT NULL, \"iot\" text, \"allow_reprovisioning\" boolean NOT NULL DEFAULT (0), \"allowlist_size\" integer, \"claim_certificate_id\" varchar(36) NOT NULL, \"last_exchange_at\" varchar(32), \"created_at\" varchar(32) NOT NULL, \"revoked_at\" varchar(32))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_claims_claim_certificate\" ON \"claims\" (\"claim_certificate_id\") ");
    await queryRunner.query("CREATE TABLE \"claim_allowlist\" (\"claim_id\" varchar(36) NOT NULL, \"device_serial\" varchar(64) NOT NULL, PRIMARY KEY (\"claim_id\", \"device_serial\"))");
    await queryRunner.query("CREATE TABLE \"provisioned_devices\" (\"claim_id\" varchar(36) NOT NULL, \"device_serial\" varchar(64) NOT NULL, \"certificate_id\" varchar(36) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"provisioned_at\" varchar(32) NOT NULL, PRIMARY KEY (\"claim_id\", \"device_serial\"))");
    await queryRunner.query("CREATE TABLE \"exchange_idempotency_keys\" (\"claim_id\" varchar(36) NOT NULL, \"idempotency_key\" varchar(128) NOT NULL, \"request_sha256\" varchar(64) NOT NULL, \"certificate_id\" varchar(36) NOT NULL, \"created_at\" varchar(32) NOT NULL, PRIMARY KEY (\"claim_id\", \"idempotency_key\"))");
    await queryRunner.query("CREATE TABLE \"used_token_ids\" (\"id\" varchar(64) PRIMARY KEY NOT NULL, \"expires_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE INDEX \"idx_used_token_ids_expires\" ON \"used_token_ids\" (\"expires_at\") ");
    await queryRunner.query("DROP INDEX \"uq_authorities_public_key\"");
    await queryRunner.query("CREATE TABLE \"temporary_authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32), \"usage\" varchar(16) NOT NULL DEFAULT ('devices'))");
    await queryRunner.query("INSERT INTO \"temporary_authorities\"(\"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\") SELECT \"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\" FROM \"authorities\"");
    await queryRunner.query("DROP TABLE \"authorities\"");
    await queryRunner.query("ALTER TABLE \"temporary_authorities\" RENAME TO \"authorities\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
    await queryRunner.query("DROP INDEX \"idx_certificates_authority\"");
    await queryRunner.query("DROP INDEX \"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_issued\"");
    await queryRunner.query("CREATE TABLE \"temporary_certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), \"iot_status\" varchar(16) NOT NULL DEFAULT ('none'), \"iot_last_error\" text, \"iot_thing\" text, \"claim_id\" varchar(36), CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("INSERT INTO \"temporary_certificates\"(\"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\") SELECT \"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\" FROM \"certificates\"");
    await queryRunner.query("DROP TABLE \"certificates\"");
    await queryRunner.query("ALTER TABLE \"temporary_certificates\" RENAME TO \"certificates\"");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\" (\"authority_id\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\" (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" (\"thing_name\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\" (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\" (\"issued_at\", \"id\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_claim\" ON \"certificates\" (\"claim_id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"idx_certificates_claim\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_issued\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_authority\"");
    await queryRunner.query("ALTER TABLE \"certificates\" RENAME TO \"temporary_certificates\"");
    await queryRunner.query("CREATE TABLE \"certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), \"iot_status\" varchar(16) NOT NULL DEFAULT ('none'), \"iot_last_error\" text, CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("INSERT INTO \"certificates\"(\"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\") SELECT \"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\", \"iot_status\", \"iot_last_error\" FROM \"temporary_certificates\"");
    await queryRunner.query("DROP TABLE \"temporary_certificates\"");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\" (\"issued_at\", \"id\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\" (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" (\"thing_name\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\" (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\" (\"authority_id\") ");
    await queryRunner.query("DROP INDEX \"uq_authorities_public_key\"");
    await queryRunner.query("ALTER TABLE \"authorities\" RENAME TO \"temporary_authorities\"");
    await queryRunner.query("CREATE TABLE \"authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32))");
    await queryRunner.query("INSERT INTO \"authorities\"(\"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\") SELECT \"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\" FROM \"temporary_authorities\"");
    await queryRunner.query("DROP TABLE \"temporary_authorities\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
    await queryRunner.query("DROP INDEX \"idx_used_token_ids_expires\"");
    await queryRunner.query("DROP TABLE \"used_token_ids\"");
    await queryRunner.query("DROP TABLE \"exchange_idempotency_keys\"");
    await queryRunner.query("DROP TABLE \"provisioned_devices\"");
    await queryRunner.query("DROP TABLE \"claim_allowlist\"");
    await queryRunner.query("DROP INDEX \"uq_claims_claim_certificate\"");
    await queryRunner.query("DROP TABLE \"claims\"");
  }
}
