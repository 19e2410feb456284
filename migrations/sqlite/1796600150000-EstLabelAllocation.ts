import { MigrationInterface, QueryRunner } from 'typeorm';

export class EstLabelAllocation1796600150000 implements MigrationInterface {
  name = 'EstLabelAllocation1796600150000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"temporary_est_labels\" (\"label\" varchar(64) PRIMARY KEY NOT NULL, \"kind\" varchar(16) NOT NULL, \"claim_id\" varchar(36), \"authority_id\" varchar(36), \"profile\" varchar(32), \"validity_days\" integer, \"key_spec\" varchar(16) NOT NULL, \"server_keygen\" boolean NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"allocation\" text)");
    await queryRunner.query("INSERT INTO \"temporary_est_labels\"(\"label\", \"kind\", \"claim_id\", \"authority_id\", \"profile\", \"validity_days\", \"key_spec\", \"server_keygen\", \"created_at\") SELECT \"label\", \"kind\", \"claim_id\", \"authority_id\", \"profile\", \"validity_days\", \"key_spec\", \"server_keygen\", \"created_at\" FROM \"est_labels\"");
    await queryRunner.query("DROP TABLE \"est_labels\"");
    await queryRunner.query("ALTER TABLE \"temporary_est_labels\" RENAME TO \"est_labels\"");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"est_labels\" RENAME TO \"temporary_est_labels\"");
    await queryRunner.query("CREATE TABLE \"est_labels\" (\"label\" varchar(64) PRIMARY KEY NOT NULL, \"kind\" varchar(16) NOT NULL, \"claim_id\" varchar(36), \"authority_id\" varchar(36), \"profile\" varchar(32), \"validity_days\" integer, \"key_spec\" varchar(16) NOT NULL, \"server_keygen\" boolean NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL)");
    await queryRunner.query("INSERT INTO \"est_labels\"(\"label\", \"kind\", \"claim_id\", \"authority_id\", \"profile\", \"validity_days\", \"key_spec\", \"server_keygen\", \"created_at\") SELECT \"label\", \"kind\", \"claim_id\", \"authority_id\", \"profile\", \"validity_days\", \"key_spec\", \"server_keygen\", \"created_at\" FROM \"temporary_est_labels\"");
    await queryRunner.query("DROP TABLE \"temporary_est_labels\"");
  }
}
