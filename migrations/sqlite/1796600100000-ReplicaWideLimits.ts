import { MigrationInterface, QueryRunner } from 'typeorm';

export class ReplicaWideLimits1796600100000 implements MigrationInterface {
  name = 'ReplicaWideLimits1796600100000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"pacing_budgets\" (\"key\" varchar(200) PRIMARY KEY NOT NULL, \"next_slot_ms\" double precision NOT NULL)");
    await queryRunner.query("CREATE TABLE \"work_leases\" (\"name\" varchar(100) PRIMARY KEY NOT NULL, \"holder\" varchar(200) NOT NULL, \"expires_at_ms\" double precision NOT NULL)");
    await queryRunner.query("CREATE TABLE \"request_limit_buckets\" (\"key\" varchar(300) PRIMARY KEY NOT NULL, \"next_slot_ms\" double precision NOT NULL)");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE \"request_limit_buckets\"");
    await queryRunner.query("DROP TABLE \"work_leases\"");
    await queryRunner.query("DROP TABLE \"pacing_budgets\"");
  }
}
