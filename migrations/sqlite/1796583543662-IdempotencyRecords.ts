import { MigrationInterface, QueryRunner } from 'typeorm';

export class IdempotencyRecords1796583543662 implements MigrationInterface {
  name = 'IdempotencyRecords1796583543662';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"idempotency_records\" (\"scope\" varchar(300) NOT NULL, \"idempotency_key\" varchar(128) NOT NULL, \"request_sha256\" varchar(64) NOT NULL, \"state\" varchar(16) NOT NULL, \"locked_until\" varchar(32) NOT NULL, \"status_code\" integer, \"response_headers\" text, \"response_body\" text, \"created_at\" varchar(32) NOT NULL, \"expires_at\" varchar(32) NOT NULL, PRIMARY KEY (\"scope\", \"idempotency_key\"))");
    await queryRunner.query("CREATE INDEX \"idx_idempotency_records_expires\" ON \"idempotency_records\" (\"expires_at\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"idx_idempotency_records_expires\"");
    await queryRunner.query("DROP TABLE \"idempotency_records\"");
  }
}
