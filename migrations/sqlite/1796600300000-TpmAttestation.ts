import { MigrationInterface, QueryRunner } from 'typeorm';

/** TPM attestation (docs/hardware-identity.md). Columns are added in place (ALTER TABLE … ADD COLUMN), not by rebuilding the tables. */
export class TpmAttestation1796600300000 implements MigrationInterface {
  name = 'TpmAttestation1796600300000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"tpm_enrollment_challenges\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"claim_id\" varchar(36) NOT NULL, \"device_serial\" varchar(64) NOT NULL, \"request\" text NOT NULL, \"secret_sha256\" varchar(64) NOT NULL, \"attestation\" text NOT NULL, \"created_at\" varchar(32) NOT NULL, \"expires_at\" varchar(32) NOT NULL, \"consumed_at\" varchar(32))");
    await queryRunner.query("CREATE INDEX \"idx_tpm_enrollment_challenges_expires\" ON \"tpm_enrollment_challenges\" (\"expires_at\") ");
    await queryRunner.query("CREATE TABLE \"tpm_manufacturer_roots\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"created_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_tpm_manufacturer_roots_fingerprint\" ON \"tpm_manufacturer_roots\" (\"fingerprint\") ");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD COLUMN \"hardware_attestation\" text");
    await queryRunner.query("ALTER TABLE \"claims\" ADD COLUMN \"attestation\" varchar(16) NOT NULL DEFAULT ('off')");
    await queryRunner.query("ALTER TABLE \"est_labels\" ADD COLUMN \"attestation\" varchar(16) NOT NULL DEFAULT ('off')");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"est_labels\" DROP COLUMN \"attestation\"");
    await queryRunner.query("ALTER TABLE \"claims\" DROP COLUMN \"attestation\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"hardware_attestation\"");
    await queryRunner.query("DROP INDEX \"uq_tpm_manufacturer_roots_fingerprint\"");
    await queryRunner.query("DROP TABLE \"tpm_manufacturer_roots\"");
    await queryRunner.query("DROP INDEX \"idx_tpm_enrollment_challenges_expires\"");
    await queryRunner.query("DROP TABLE \"tpm_enrollment_challenges\"");
  }
}
