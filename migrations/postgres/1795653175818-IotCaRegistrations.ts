import { MigrationInterface, QueryRunner } from 'typeorm';

export class IotCaRegistrations1795653175818 implements MigrationInterface {
  name = 'IotCaRegistrations1795653175818';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"iot_ca_registrations\" (\"authority_id\" character varying(36) NOT NULL, \"ca_certificate_id\" character varying(64) NOT NULL, \"ca_certificate_arn\" character varying(2048) NOT NULL, \"certificate_mode\" character varying(16) NOT NULL, \"status\" character varying(16) NOT NULL, \"auto_registration\" boolean NOT NULL, \"device_registration\" character varying(16) NOT NULL, \"policy_name\" character varying(128), \"provisioning_template\" text, \"registered_at\" character varying(32) NOT NULL, \"updated_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_1d808f042173764b5a48c7f91a2\" PRIMARY KEY (\"authority_id\"))");
    await queryRunner.query("CREATE INDEX \"idx_iot_ca_registrations_ca_certificate\" ON \"iot_ca_registrations\"  (\"ca_certificate_id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"idx_iot_ca_registrations_ca_certificate\"");
    await queryRunner.query("DROP TABLE \"iot_ca_registrations\"");
  }
}
