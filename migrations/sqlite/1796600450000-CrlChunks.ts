import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * CRL DER in chunk rows (docs/architecture.md "CRLs"). The crls column is added in place (ALTER TABLE ADD COLUMN): a
 * table rebuild would copy every stored CRL, tens of MB each.
 */
export class CrlChunks1796600450000 implements MigrationInterface {
  name = 'CrlChunks1796600450000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"crl_chunks\" (\"authority_id\" varchar(36) NOT NULL, \"crl_number\" integer NOT NULL, \"seq\" integer NOT NULL, \"bytes\" text NOT NULL, PRIMARY KEY (\"authority_id\", \"crl_number\", \"seq\"))");
    await queryRunner.query("ALTER TABLE \"crls\" ADD COLUMN \"chunks\" integer NOT NULL DEFAULT (0)");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"crls\" DROP COLUMN \"chunks\"");
    await queryRunner.query("DROP TABLE \"crl_chunks\"");
  }
}
