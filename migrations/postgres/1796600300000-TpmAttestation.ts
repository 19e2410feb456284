import { MigrationInterface, QueryRunner } from 'typeorm';

export class TpmAttestation1796600300000 implements MigrationInterface {
  name = 'TpmAttestation1796600300000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"tpm_enrollment_challenges\" (\"id\" character varying(36) NOT NULL, \"claim_id\" character varying(36) NOT NULL, \"device_serial\" character varying(64) NOT NULL, \"request\" text NOT NULL, \"secret_sha256\" character varying(64) NOT NULL, \"attestation\" text NOT NULL, \"created_at\" character varying(32) NOT NULL, \"expires_at\" character varying(32) NOT NULL, \"consumed_at\" character varying(32), CONSTRAINT \"PK_a153e4cbd61430bd624e71848e3\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_tpm_enrollment_challenges_expires\" ON \"tpm_enrollment_challenges\"  (\"expires_at\") ");
    await queryRunner.query("CREATE TABLE \"tpm_manufacturer_roots\" (\"id\" character varying(36) NOT NULL, \"name\" character varying(200) NOT NULL, \"fingerprint\" character varying(64) NOT NULL, \"subject\" text NOT NULL, \"not_after\" character varying(32) NOT NULL, \"certificate_der\" text NOT NULL, \"created_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_f9a6aa0619407c6adfd15e59bba\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_tpm_manufacturer_roots_fingerprint\" ON \"tpm_manufacturer_roots\"  (\"fingerprint\") ");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"hardware_attestation\" text");
    await queryRunner.query("ALTER TABLE \"claims\" ADD \"attestation\" character varying(16) NOT NULL DEFAULT 'off'");
    await queryRunner.query("ALTER TABLE \"est_labels\" ADD \"attestation\" character varying(16) NOT NULL DEFAULT 'off'");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"est_labels\" DROP COLUMN \"attestation\"");
    await queryRunner.query("ALTER TABLE \"claims\" DROP COLUMN \"attestation\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"hardware_attestation\"");
    await queryRunner.query("DROP INDEX \"public\".\"uq_tpm_manufacturer_roots_fingerprint\"");
    await queryRunner.query("DROP TABLE \"tpm_manufacturer_roots\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_tpm_enrollment_challenges_expires\"");
    await queryRunner.query("DROP TABLE \"tpm_enrollment_challenges\"");
  }
}
