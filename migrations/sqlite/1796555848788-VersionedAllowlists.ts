import { MigrationInterface, QueryRunner } from 'typeorm';

export class VersionedAllowlists1796555848788 implements MigrationInterface {
  name = 'VersionedAllowlists1796555848788';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"claim_allowlists\" (\"id\" integer PRIMARY KEY AUTOINCREMENT NOT NULL, \"claim_id\" varchar(36) NOT NULL, \"status\" varchar(16) NOT NULL, \"size\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE INDEX \"idx_claim_allowlists_status\" ON \"claim_allowlists\" (\"status\") ");
    await queryRunner.query("CREATE TABLE \"claim_allowlist_serials\" (\"allowlist_id\" integer NOT NULL, \"device_serial\" varchar(64) NOT NULL, PRIMARY KEY (\"allowlist_id\", \"device_serial\")) WITHOUT ROWID");
    await queryRunner.query("DROP INDEX \"uq_claims_claim_certificate\"");
    await queryRunner.query("CREATE TABLE \"temporary_claims\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"factory\" varchar(200) NOT NULL, \"line\" varchar(200), \"status\" varchar(16) NOT NULL, \"claim_authority_id\" varchar(36) NOT NULL, \"device_authority_id\" varchar(36) NOT NULL, \"profile\" varchar(32) NOT NULL, \"validity_days\" integer, \"max_devices\" integer NOT NULL, \"used\" integer NOT NULL DEFAULT (0), \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"serial_pattern\" varchar(256), \"thing_name_template\" varchar(128) NOT NULL, \"iot\" text, \"allow_reprovisioning\" boolean NOT NULL DEFAULT (0), \"allowlist_size\" integer, \"claim_certificate_id\" varchar(36) NOT NULL, \"last_exchange_at\" varchar(32), \"created_at\" varchar(32) NOT NULL, \"revoked_at\" varchar(32), \"allowlist_id\" integer)");
    await queryRunner.query("INSERT INTO \"temporary_claims\"(\"id\", \"name\", \"factory\", \"line\", \"status\", \"claim_authority_id\", \"device_authority_id\", \"profile\", \"validity_days\", \"max_devices\", \"used\", \"not_before\", \"not_after\", \"serial_pattern\", \"thing_name_template\", \"iot\", \"allow_reprovisioning\", \"allowlist_size\", \"claim_certificate_id\", \"last_exchange_at\", \"created_at\", \"revoked_at\") SELECT \"id\", \"name\", \"factory\", \"line\", \"status\", \"claim_authority_id\", \"device_authority_id\", \"profile\", \"validity_days\", \"max_devices\", \"used\", \"not_before\", \"not_after\", \"serial_pattern\", \"thing_name_template\", \"iot\", \"allow_reprovisioning\", \"allowlist_size\", \"claim_certificate_id\", \"last_exchange_at\", \"created_at\", \"revoked_at\" FROM \"claims\"");
    await queryRunner.query("DROP TABLE \"claims\"");
    await queryRunner.query("ALTER TABLE \"temporary_claims\" RENAME TO \"claims\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_claims_claim_certificate\" ON \"claims\" (\"claim_certificate_id\") ");
    // Hand-written: each existing allow-list becomes its claim's active version, then the one-table layout goes.
    await queryRunner.query("INSERT INTO \"claim_allowlists\" (\"claim_id\", \"status\", \"size\", \"created_at\", \"updated_at\") SELECT \"id\", 'active', \"allowlist_size\", \"created_at\", \"created_at\" FROM \"claims\" WHERE \"allowlist_size\" IS NOT NULL ORDER BY \"created_at\", \"id\"");
    await queryRunner.query("INSERT INTO \"claim_allowlist_serials\" (\"allowlist_id\", \"device_serial\") SELECT \"l\".\"id\", \"a\".\"device_serial\" FROM \"claim_allowlist\" \"a\" JOIN \"claim_allowlists\" \"l\" ON \"l\".\"claim_id\" = \"a\".\"claim_id\"");
    await queryRunner.query("UPDATE \"claims\" SET \"allowlist_id\" = (SELECT \"l\".\"id\" FROM \"claim_allowlists\" \"l\" WHERE \"l\".\"claim_id\" = \"claims\".\"id\") WHERE \"allowlist_size\" IS NOT NULL");
    await queryRunner.query("DROP TABLE \"claim_allowlist\"");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Hand-written: the active versions go back to the one-table layout.
    await queryRunner.query("CREATE TABLE \"claim_allowlist\" (\"claim_id\" varchar(36) NOT NULL, \"device_serial\" varchar(64) NOT NULL, PRIMARY KEY (\"claim_id\", \"device_serial\"))");
    await queryRunner.query("INSERT INTO \"claim_allowlist\" (\"claim_id\", \"device_serial\") SELECT \"c\".\"id\", \"s\".\"device_serial\" FROM \"claims\" \"c\" JOIN \"claim_allowlist_serials\" \"s\" ON \"s\".\"allowlist_id\" = \"c\".\"allowlist_id\"");
    await queryRunner.query("DROP INDEX \"uq_claims_claim_certificate\"");
    await queryRunner.query("ALTER TABLE \"claims\" RENAME TO \"temporary_claims\"");
    await queryRunner.query("CREATE TABLE \"claims\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"factory\" varchar(200) NOT NULL, \"line\" varchar(200), \"status\" varchar(16) NOT NULL, \"claim_authority_id\" varchar(36) NOT NULL, \"device_authority_id\" varchar(36) NOT NULL, \"profile\" varchar(32) NOT NULL, \"validity_days\" integer, \"max_devices\" integer NOT NULL, \"used\" integer NOT NULL DEFAULT (0), \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"serial_pattern\" varchar(256), \"thing_name_template\" varchar(128) NOT NULL, \"iot\" text, \"allow_reprovisioning\" boolean NOT NULL DEFAULT (0), \"allowlist_size\" integer, \"claim_certificate_id\" varchar(36) NOT NULL, \"last_exchange_at\" varchar(32), \"created_at\" varchar(32) NOT NULL, \"revoked_at\" varchar(32))");
    await queryRunner.query("INSERT INTO \"claims\"(\"id\", \"name\", \"factory\", \"line\", \"status\", \"claim_authority_id\", \"device_authority_id\", \"profile\", \"validity_days\", \"max_devices\", \"used\", \"not_before\", \"not_after\", \"serial_pattern\", \"thing_name_template\", \"iot\", \"allow_reprovisioning\", \"allowlist_size\", \"claim_certificate_id\", \"last_exchange_at\", \"created_at\", \"revoked_at\") SELECT \"id\", \"name\", \"factory\", \"line\", \"status\", \"claim_authority_id\", \"device_authority_id\", \"profile\", \"validity_days\", \"max_devices\", \"used\", \"not_before\", \"not_after\", \"serial_pattern\", \"thing_name_template\", \"iot\", \"allow_reprovisioning\", \"allowlist_size\", \"claim_certificate_id\", \"last_exchange_at\", \"created_at\", \"revoked_at\" FROM \"temporary_claims\"");
    await queryRunner.query("DROP TABLE \"temporary_claims\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_claims_claim_certificate\" ON \"claims\" (\"claim_certificate_id\") ");
    await queryRunner.query("DROP TABLE \"claim_allowlist_serials\"");
    await queryRunner.query("DROP INDEX \"idx_claim_allowlists_status\"");
    await queryRunner.query("DROP TABLE \"claim_allowlists\"");
  }
}
