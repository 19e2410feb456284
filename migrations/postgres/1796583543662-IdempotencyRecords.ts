import { MigrationInterface, QueryRunner } from 'typeorm';

export class IdempotencyRecords1796583543662 implements MigrationInterface {
  name = 'IdempotencyRecords1796583543662';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"idempotency_records\" (\"scope\" character varying(300) NOT NULL, \"idempotency_key\" character varying(128) NOT NULL, \"request_sha256\" character varying(64) NOT NULL, \"state\" character varying(16) NOT NULL, \"locked_until\" character varying(32) NOT NULL, \"status_code\" integer, \"response_headers\" text, \"response_body\" text, \"created_at\" character varying(32) NOT NULL, \"expires_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_c16dcc0ca878b58160e527c80c1\" PRIMARY KEY (\"scope\", \"idempotency_key\"))");
    await queryRunner.query("CREATE INDEX \"idx_idempotency_records_expires\" ON \"idempotency_records\"  (\"expires_at\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"idx_idempotency_records_expires\"");
    await queryRunner.query("DROP TABLE \"idempotency_records\"");
  }
}
