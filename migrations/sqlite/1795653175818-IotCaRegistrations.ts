import { MigrationInterface, QueryRunner } from 'typeorm';

export class IotCaRegistrations1795653175818 implements MigrationInterface {
  name = 'IotCaRegistrations1795653175818';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"iot_ca_registrations\" (\"authority_id\" varchar(36) PRIMARY KEY NOT NULL, \"ca_certificate_id\" varchar(64) NOT NULL, \"ca_certificate_arn\" varchar(2048) NOT NULL, \"certificate_mode\" varchar(16) NOT NULL, \"status\" varchar(16) NOT NULL, \"auto_registration\" boolean NOT NULL, \"device_registration\" varchar(16) NOT NULL, \"policy_name\" varchar(128), \"provisioning_template\" text, \"registered_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE INDEX \"idx_iot_ca_registrations_ca_certificate\" ON \"iot_ca_registrations\" (\"ca_certificate_id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"idx_iot_ca_registrations_ca_certificate\"");
    await queryRunner.query("DROP TABLE \"iot_ca_registrations\"");
  }
}
