import { MigrationInterface, QueryRunner } from 'typeorm';

export class OutboxAndIotStatus1795653401665 implements MigrationInterface {
  name = 'OutboxAndIotStatus1795653401665';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"outbox_jobs\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"kind\" varchar(64) NOT NULL, \"payload\" text NOT NULL, \"status\" varchar(16) NOT NULL, \"attempts\" integer NOT NULL DEFAULT (0), \"run_after\" varchar(32) NOT NULL, \"locked_by\" varchar(64), \"locked_until\" varchar(32), \"last_error\" text, \"dedupe_key\" varchar(200), \"target_type\" varchar(32), \"target_id\" varchar(128), \"created_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_outbox_jobs_dedupe\" ON \"outbox_jobs\" (\"dedupe_key\") ");
    await queryRunner.query("CREATE INDEX \"idx_outbox_jobs_target\" ON \"outbox_jobs\" (\"target_id\") ");
    await queryRunner.query("CREATE INDEX \"idx_outbox_jobs_due\" ON \"outbox_jobs\" (\"status\", \"run_after\") ");
    await queryRunner.query("DROP INDEX \"idx_certificates_issued\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_revoked_key\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_not_after\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"uq_certificates_fingerprint\"");
    await queryRunner.query("DROP INDEX \"idx_certificates_authority\"");
    await queryRunner.query("CREATE TABLE \"temporary_certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), \"iot_status\" varchar(16) NOT NULL DEFAULT ('none'), \"iot_last_error\" text, CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("INSERT INTO \"temporary_certificates\"(\"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\") SELECT \"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\" FROM \"certificates\"");
    await queryRunner.query("DROP TABLE \"certificates\"");
    await queryRunner.query("ALTER TABLE \"temporary_certificates\" RENAME TO \"certificates\"");
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
    await queryRunner.query("ALTER TABLE \"certificates\" RENAME TO \"temporary_certificates\"");
    await queryRunner.query("CREATE TABLE \"certificates\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"authority_id\" varchar(36) NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"profile\" varchar(32) NOT NULL, \"subject\" text NOT NULL, \"thing_name\" varchar(128), \"status\" varchar(16) NOT NULL, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"issued_at\" varchar(32) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"key_description\" varchar(16) NOT NULL, \"certificate_der\" text NOT NULL, \"metadata\" text, \"validity_clamped\" boolean NOT NULL DEFAULT (0), \"revoked_at\" varchar(32), \"revocation_reason\" varchar(32), CONSTRAINT \"uq_certificates_authority_serial\" UNIQUE (\"authority_id\", \"serial\"))");
    await queryRunner.query("INSERT INTO \"certificates\"(\"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\") SELECT \"id\", \"authority_id\", \"serial\", \"fingerprint\", \"profile\", \"subject\", \"thing_name\", \"status\", \"not_before\", \"not_after\", \"issued_at\", \"public_key_sha256\", \"key_description\", \"certificate_der\", \"metadata\", \"validity_clamped\", \"revoked_at\", \"revocation_reason\" FROM \"temporary_certificates\"");
    await queryRunner.query("DROP TABLE \"temporary_certificates\"");
    await queryRunner.query("CREATE INDEX \"idx_certificates_authority\" ON \"certificates\" (\"authority_id\") ");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_certificates_fingerprint\" ON \"certificates\" (\"fingerprint\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" (\"thing_name\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_revoked_key\" ON \"certificates\" (\"public_key_sha256\", \"revocation_reason\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_issued\" ON \"certificates\" (\"issued_at\", \"id\") ");
    await queryRunner.query("DROP INDEX \"idx_outbox_jobs_due\"");
    await queryRunner.query("DROP INDEX \"idx_outbox_jobs_target\"");
    await queryRunner.query("DROP INDEX \"uq_outbox_jobs_dedupe\"");
    await queryRunner.query("DROP TABLE \"outbox_jobs\"");
  }
}
