import { MigrationInterface, QueryRunner } from 'typeorm';

export class EstLabelAllocation1796600150000 implements MigrationInterface {
  name = 'EstLabelAllocation1796600150000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"est_labels\" ADD \"allocation\" text");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"est_labels\" DROP COLUMN \"allocation\"");
  }
}
