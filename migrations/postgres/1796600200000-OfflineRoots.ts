import { MigrationInterface, QueryRunner } from 'typeorm';

export class OfflineRoots1796600200000 implements MigrationInterface {
  name = 'OfflineRoots1796600200000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"offline\" boolean NOT NULL DEFAULT false");
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"signing_enabled_until\" character varying(32)");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"signing_enabled_until\"");
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"offline\"");
  }
}
