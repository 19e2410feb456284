import { MigrationInterface, QueryRunner } from 'typeorm';

export class EstLabels1796579963034 implements MigrationInterface {
  name = 'EstLabels1796579963034';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"est_labels\" (\"label\" varchar(64) PRIMARY KEY NOT NULL, \"kind\" varchar(16) NOT NULL, \"claim_id\" varchar(36), \"authority_id\" varchar(36), \"profile\" varchar(32), \"validity_days\" integer, \"key_spec\" varchar(16) NOT NULL, \"server_keygen\" boolean NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL)");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP TABLE \"est_labels\"");
  }
}
