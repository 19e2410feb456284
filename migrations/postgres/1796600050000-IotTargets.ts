import { MigrationInterface, QueryRunner } from 'typeorm';

export class IotTargets1796600050000 implements MigrationInterface {
  name = 'IotTargets1796600050000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"iot_targets\" (\"id\" character varying(64) NOT NULL, \"account_id\" character varying(12) NOT NULL, \"region\" character varying(32) NOT NULL, \"role_arn\" character varying(2048), \"profile\" character varying(128), \"endpoint\" character varying(2048), \"rate_limits\" text, \"created_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_96323197f58282c0de63f1638f0\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"iot_target_id\" character varying(64)");
    await queryRunner.query("ALTER TABLE \"claims\" ADD \"allocation\" text");
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" ADD \"target_id\" character varying(64) NOT NULL DEFAULT 'default'");
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" DROP CONSTRAINT \"PK_1d808f042173764b5a48c7f91a2\"");
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" ADD CONSTRAINT \"PK_0483956f0f016a2546e617c23e1\" PRIMARY KEY (\"authority_id\", \"target_id\")");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" DROP CONSTRAINT \"PK_0483956f0f016a2546e617c23e1\"");
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" ADD CONSTRAINT \"PK_1d808f042173764b5a48c7f91a2\" PRIMARY KEY (\"authority_id\")");
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" DROP COLUMN \"target_id\"");
    await queryRunner.query("ALTER TABLE \"claims\" DROP COLUMN \"allocation\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"iot_target_id\"");
    await queryRunner.query("DROP TABLE \"iot_targets\"");
  }
}
