import { MigrationInterface, QueryRunner } from 'typeorm';

export class RotationAndOcsp1795662690640 implements MigrationInterface {
  name = 'RotationAndOcsp1795662690640';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"ocsp_signers\" (\"id\" character varying(36) NOT NULL, \"authority_id\" character varying(36) NOT NULL, \"key_ref\" character varying(64) NOT NULL, \"key_spec\" character varying(16) NOT NULL, \"certificate_der\" text NOT NULL, \"not_before\" character varying(32) NOT NULL, \"not_after\" character varying(32) NOT NULL, \"created_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_12c98041a137faf105457b7c879\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_ocsp_signers_authority\" ON \"ocsp_signers\"  (\"authority_id\", \"not_after\") ");
    await queryRunner.query("CREATE TABLE \"rotation_campaigns\" (\"id\" character varying(36) NOT NULL, \"status\" character varying(16) NOT NULL, \"reason\" character varying(500) NOT NULL, \"selector\" text NOT NULL, \"deadline\" character varying(32) NOT NULL, \"on_deadline\" character varying(16) NOT NULL, \"notify\" character varying(16), \"total\" integer NOT NULL, \"iot_job_id\" character varying(64), \"created_at\" character varying(32) NOT NULL, \"closed_at\" character varying(32), CONSTRAINT \"PK_e27bf43c2cfbff991446fce7298\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE TABLE \"rotation_campaign_members\" (\"campaign_id\" character varying(36) NOT NULL, \"certificate_id\" character varying(36) NOT NULL, \"thing_name\" character varying(128), \"state\" character varying(16) NOT NULL, \"renewed_by_id\" character varying(36), \"updated_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_61b151be978c74e3a6aeeb0d284\" PRIMARY KEY (\"campaign_id\", \"certificate_id\"))");
    await queryRunner.query("CREATE INDEX \"idx_rotation_members_certificate\" ON \"rotation_campaign_members\"  (\"certificate_id\") ");
    await queryRunner.query("CREATE INDEX \"idx_rotation_members_state\" ON \"rotation_campaign_members\"  (\"campaign_id\", \"state\", \"certificate_id\") ");
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"successor_id\" character varying(36)");
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"retiring_at\" character varying(32)");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"replaces_id\" character varying(36)");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"replaced_by_id\" character varying(36)");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"superseded_at\" character varying(32)");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"superseded_at\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"replaced_by_id\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"replaces_id\"");
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"retiring_at\"");
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"successor_id\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_rotation_members_state\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_rotation_members_certificate\"");
    await queryRunner.query("DROP TABLE \"rotation_campaign_members\"");
    await queryRunner.query("DROP TABLE \"rotation_campaigns\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_ocsp_signers_authority\"");
    await queryRunner.query("DROP TABLE \"ocsp_signers\"");
  }
}
