import { MigrationInterface, QueryRunner } from 'typeorm';

export class AuthorityLeafIssuance1796553572584 implements MigrationInterface {
  name = 'AuthorityLeafIssuance1796553572584';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"allow_leaf_issuance\" boolean NOT NULL DEFAULT false");
    // Every authority that exists at the upgrade keeps signing end-entity certificates as before: a root may be a
    // claim's authority, or a rotation's successor, that has not issued yet, and must not start failing exchanges and
    // renewals with AUTHORITY_IS_ROOT. Only authorities created after the upgrade get the new default (false for roots).
    await queryRunner.query("UPDATE \"authorities\" SET \"allow_leaf_issuance\" = true");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"allow_leaf_issuance\"");
  }
}
