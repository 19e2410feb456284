import { MigrationInterface, QueryRunner } from 'typeorm';

export class LiveOutboxDedupe1795654298851 implements MigrationInterface {
  name = 'LiveOutboxDedupe1795654298851';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"uq_outbox_jobs_dedupe\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_outbox_jobs_live_dedupe\" ON \"outbox_jobs\"  (\"dedupe_key\") WHERE status IN ('pending', 'running')");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"uq_outbox_jobs_live_dedupe\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_outbox_jobs_dedupe\" ON \"outbox_jobs\" USING btree (\"dedupe_key\") ");
  }
}
