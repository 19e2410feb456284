import { MigrationInterface, QueryRunner } from 'typeorm';

export class IotTargets1796600050000 implements MigrationInterface {
  name = 'IotTargets1796600050000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"iot_targets\" (\"id\" varchar(64) PRIMARY KEY NOT NULL, \"account_id\" varchar(12) NOT NULL, \"region\" varchar(32) NOT NULL, \"role_arn\" varchar(2048), \"profile\" varchar(128), \"endpoint\" varchar(2048), \"rate_limits\" text, \"created_at\" varchar(32) NOT NULL)");
    // SQLite can add a column in place: no rebuild of certificates/claims (whose expression index TypeORM cannot describe).
    await queryRunner.query("ALTER TABLE \"certificates\" ADD COLUMN \"iot_target_id\" varchar(64)");
    await queryRunner.query("ALTER TABLE \"claims\" ADD COLUMN \"allocation\" text");
    await queryRunner.query("DROP INDEX \"idx_iot_ca_registrations_ca_certificate\"");
    await queryRunner.query("CREATE TABLE \"temporary_iot_ca_registrations\" (\"authority_id\" varchar(36) NOT NULL, \"ca_certificate_id\" varchar(64) NOT NULL, \"ca_certificate_arn\" varchar(2048) NOT NULL, \"certificate_mode\" varchar(16) NOT NULL, \"status\" varchar(16) NOT NULL, \"auto_registration\" boolean NOT NULL, \"device_registration\" varchar(16) NOT NULL, \"policy_name\" varchar(128), \"provisioning_template\" text, \"registered_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL, \"target_id\" varchar(64) NOT NULL DEFAULT ('default'), PRIMARY KEY (\"authority_id\", \"target_id\"))");
    await queryRunner.query("INSERT INTO \"temporary_iot_ca_registrations\"(\"authority_id\", \"ca_certificate_id\", \"ca_certificate_arn\", \"certificate_mode\", \"status\", \"auto_registration\", \"device_registration\", \"policy_name\", \"provisioning_template\", \"registered_at\", \"updated_at\") SELECT \"authority_id\", \"ca_certificate_id\", \"ca_certificate_arn\", \"certificate_mode\", \"status\", \"auto_registration\", \"device_registration\", \"policy_name\", \"provisioning_template\", \"registered_at\", \"updated_at\" FROM \"iot_ca_registrations\"");
    await queryRunner.query("DROP TABLE \"iot_ca_registrations\"");
    await queryRunner.query("ALTER TABLE \"temporary_iot_ca_registrations\" RENAME TO \"iot_ca_registrations\"");
    await queryRunner.query("CREATE INDEX \"idx_iot_ca_registrations_ca_certificate\" ON \"iot_ca_registrations\" (\"ca_certificate_id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"idx_iot_ca_registrations_ca_certificate\"");
    await queryRunner.query("ALTER TABLE \"iot_ca_registrations\" RENAME TO \"temporary_iot_ca_registrations\"");
    await queryRunner.query("CREATE TABLE \"iot_ca_registrations\" (\"authority_id\" varchar(36) PRIMARY KEY NOT NULL, \"ca_certificate_id\" varchar(64) NOT NULL, \"ca_certificate_arn\" varchar(2048) NOT NULL, \"certificate_mode\" varchar(16) NOT NULL, \"status\" varchar(16) NOT NULL, \"auto_registration\" boolean NOT NULL, \"device_registration\" varchar(16) NOT NULL, \"policy_name\" varchar(128), \"provisioning_template\" text, \"registered_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL)");
    await queryRunner.query("INSERT INTO \"iot_ca_registrations\"(\"authority_id\", \"ca_certificate_id\", \"ca_certificate_arn\", \"certificate_mode\", \"status\", \"auto_registration\", \"device_registration\", \"policy_name\", \"provisioning_template\", \"registered_at\", \"updated_at\") SELECT \"authority_id\", \"ca_certificate_id\", \"ca_certificate_arn\", \"certificate_mode\", \"status\", \"auto_registration\", \"device_registration\", \"policy_name\", \"provisioning_template\", \"registered_at\", \"updated_at\" FROM \"temporary_iot_ca_registrations\"");
    await queryRunner.query("DROP TABLE \"temporary_iot_ca_registrations\"");
    await queryRunner.query("CREATE INDEX \"idx_iot_ca_registrations_ca_certificate\" ON \"iot_ca_registrations\" (\"ca_certificate_id\") ");
    await queryRunner.query("ALTER TABLE \"claims\" DROP COLUMN \"allocation\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"iot_target_id\"");
    await queryRunner.query("DROP TABLE \"iot_targets\"");
  }
}
