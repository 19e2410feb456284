import { MigrationInterface, QueryRunner } from 'typeorm';

export class ReplicaWideLimits1796600100000 implements MigrationInterface {
  name = 'ReplicaWideLimits1796600100000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"pacing_budgets\" (\"key\" character varying(200) NOT NULL, \"next_slot_ms\" double precision NOT NULL, CONSTRAINT \"PK_93f7f3a796264a8bea48807bf53\" PRIMARY KEY (\"key\"))");
    await queryRunner.query("CREATE TABLE \"work_leases\" (\"name\" character varying(100) NOT NULL, \"holder\" character varying(200) NOT NULL, \"expires_at_ms\" double precision NOT NULL, CONSTRAINT \"PK_5f165dc8e2510227e973ab3e87c\" PRIMARY KEY (\"name\"))");
    await queryRunner.query("CREATE TABLE \"request_limit_buckets\" (\"key\" character varying(300) NOT NULL, \"next_slot_ms\" double precision NOT NULL, CONSTRAINT \"PK_9d3fc3ada0e8bd529b4d3c40f29\" PRIMARY KEY (\"key\"))");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE \"request_limit_buckets\"");
    await queryRunner.query("DROP TABLE \"work_leases\"");
    await queryRunner.query("DROP TABLE \"pacing_budgets\"");
  }
}
