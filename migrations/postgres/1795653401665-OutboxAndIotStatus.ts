import { MigrationInterface, QueryRunner } from 'typeorm';

export class OutboxAndIotStatus1795653401665 implements MigrationInterface {
  name = 'OutboxAndIotStatus1795653401665';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"outbox_jobs\" (\"id\" character varying(36) NOT NULL, \"kind\" character varying(64) NOT NULL, \"payload\" text NOT NULL, \"status\" character varying(16) NOT NULL, \"attempts\" integer NOT NULL DEFAULT '0', \"run_after\" character varying(32) NOT NULL, \"locked_by\" character varying(64), \"locked_until\" character varying(32), \"last_error\" text, \"dedupe_key\" character varying(200), \"target_type\" character varying(32), \"target_id\" character varying(128), \"created_at\" character varying(32) NOT NULL, \"updated_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_eca0e49b45a0974cb16b7d2e498\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_outbox_jobs_dedupe\" ON \"outbox_jobs\"  (\"dedupe_key\") ");
    await queryRunner.query("CREATE INDEX \"idx_outbox_jobs_target\" ON \"outbox_jobs\"  (\"target_id\") ");
    await queryRunner.query("CREATE INDEX \"idx_outbox_jobs_due\" ON \"outbox_jobs\"  (\"status\", \"run_after\") ");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"iot_status\" character varying(16) NOT NULL DEFAULT 'none'");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"iot_last_error\" text");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"iot_last_error\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"iot_status\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_outbox_jobs_due\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_outbox_jobs_target\"");
    await queryRunner.query("DROP INDEX \"public\".\"uq_outbox_jobs_dedupe\"");
    await queryRunner.query("DROP TABLE \"outbox_jobs\"");
  }
}
