import { MigrationInterface, QueryRunner } from 'typeorm';

export class ExternalRootAuthorities1796579908156 implements MigrationInterface {
  name = 'ExternalRootAuthorities1796579908156';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"csr_der\" text");
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"external_chain\" text");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"external_chain\"");
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"csr_der\"");
  }
}
