import { MigrationInterface, QueryRunner } from 'typeorm';

/** CRL DER in chunk rows (docs/architecture.md "CRLs"). */
export class CrlChunks1796600450000 implements MigrationInterface {
  name = 'CrlChunks1796600450000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"crl_chunks\" (\"authority_id\" character varying(36) NOT NULL, \"crl_number\" integer NOT NULL, \"seq\" integer NOT NULL, \"bytes\" text NOT NULL, CONSTRAINT \"PK_4738d8a33e6ffe5139f4f9778b4\" PRIMARY KEY (\"authority_id\", \"crl_number\", \"seq\"))");
    await queryRunner.query("ALTER TABLE \"crls\" ADD \"chunks\" integer NOT NULL DEFAULT '0'");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"crls\" DROP COLUMN \"chunks\"");
    await queryRunner.query("DROP TABLE \"crl_chunks\"");
  }
}
