import { MigrationInterface, QueryRunner } from 'typeorm';

export class EstLabels1796579963034 implements MigrationInterface {
  name = 'EstLabels1796579963034';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"est_labels\" (\"label\" character varying(64) NOT NULL, \"kind\" character varying(16) NOT NULL, \"claim_id\" character varying(36), \"authority_id\" character varying(36), \"profile\" character varying(32), \"validity_days\" integer, \"key_spec\" character varying(16) NOT NULL, \"server_keygen\" boolean NOT NULL DEFAULT false, \"created_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_88a5d69df542fccfefaf2225cfa\" PRIMARY KEY (\"label\"))");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE \"est_labels\"");
  }
}
