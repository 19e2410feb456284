import { MigrationInterface, QueryRunner } from 'typeorm';

export class AuthorityLeafIssuance1796553572584 implements MigrationInterface {
  name = 'AuthorityLeafIssuance1796553572584';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"allow_leaf_issuance\" boolean NOT NULL DEFAULT false");
    // Intermediates sign end-entity certificates as before. So do roots that already did: their devices must keep
    // renewing and their claims exchanging after the upgrade (the flag shows it). New roots default to false.
    await queryRunner.query("UPDATE \"authorities\" SET \"allow_leaf_issuance\" = true WHERE \"type\" = 'intermediate' OR EXISTS (SELECT 1 FROM \"certificates\" c WHERE c.\"authority_id\" = \"authorities\".\"id\")");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"allow_leaf_issuance\"");
  }
}
