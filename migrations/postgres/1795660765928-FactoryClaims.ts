import { MigrationInterface, QueryRunner } from 'typeorm';

export class FactoryClaims1795660765928 implements MigrationInterface {
  name = 'FactoryClaims1795660765928';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"claims\" (\"id\" character varying(36) NOT NULL, \"name\" character varying(200) NOT NULL, \"factory\" character varying(200) NOT NULL, \"line\" character varying(200), \"status\" character varying(16) NOT NULL, \"claim_authority_id\" character varying(36) NOT NULL, \"device_authority_id\" character varying(36) NOT NULL, \"profile\" character varying(32) NOT NULL, \"validity_days\" integer, \"max_devices\" integer NOT NULL, \"used\" integer NOT NULL DEFAULT '0', \"not_before\" character varying(32) NOT NULL, \"not_after\" character varying(32) NOT NULL, \"serial_pattern\" character varying(256), \"thing_name_template\" character varying(128) NOT NULL, \"iot\" text, \"allow_reprovisioning\" boolean NOT NULL DEFAULT false, \"allowlist_size\" integer, \"claim_certificate_id\" character varying(36) NOT NULL, \"last_exchange_at\" character varying(32), \"created_at\" character varying(32) NOT NULL, \"revoked_at\" character varying(32), CONSTRAINT \"PK_96c91970c0dcb2f69fdccd0a698\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_claims_claim_certificate\" ON \"claims\"  (\"claim_certificate_id\") ");
    await queryRunner.query("CREATE TABLE \"claim_allowlist\" (\"claim_id\" character varying(36) NOT NULL, \"device_serial\" character varying(64) NOT NULL, CONSTRAINT \"PK_e58f31c1b58f5d1e296c95faf92\" PRIMARY KEY (\"claim_id\", \"device_serial\"))");
    await queryRunner.query("CREATE TABLE \"provisioned_devices\" (\"claim_id\" character varying(36) NOT NULL, \"device_serial\" character varying(64) NOT NULL, \"certificate_id\" character varying(36) NOT NULL, \"public_key_sha256\" character varying(64) NOT NULL, \"provisioned_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_e7579e477ff1bfbb9448c3fd77c\" PRIMARY KEY (\"claim_id\", \"device_serial\"))");
    await queryRunner.query("CREATE TABLE \"exchange_idempotency_keys\" (\"claim_id\" character varying(36) NOT NULL, \"idempotency_key\" character varying(128) NOT NULL, \"request_sha256\" character varying(64) NOT NULL, \"certificate_id\" character varying(36) NOT NULL, \"created_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_216aab0c7e9ec7ada614db4820a\" PRIMARY KEY (\"claim_id\", \"idempotency_key\"))");
    await queryRunner.query("CREATE TABLE \"used_token_ids\" (\"id\" character varying(64) NOT NULL, \"expires_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_2bb7839a0ce111769fcaacd1dbc\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_used_token_ids_expires\" ON \"used_token_ids\"  (\"expires_at\") ");
    await queryRunner.query("ALTER TABLE \"authorities\" ADD \"usage\" character varying(16) NOT NULL DEFAULT 'devices'");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"iot_thing\" text");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"claim_id\" character varying(36)");
    await queryRunner.query("CREATE INDEX \"idx_certificates_claim\" ON \"certificates\"  (\"claim_id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_claim\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"claim_id\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"iot_thing\"");
    await queryRunner.query("ALTER TABLE \"authorities\" DROP COLUMN \"usage\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_used_token_ids_expires\"");
    await queryRunner.query("DROP TABLE \"used_token_ids\"");
    await queryRunner.query("DROP TABLE \"exchange_idempotency_keys\"");
    await queryRunner.query("DROP TABLE \"provisioned_devices\"");
    await queryRunner.query("DROP TABLE \"claim_allowlist\"");
    await queryRunner.query("DROP INDEX \"public\".\"uq_claims_claim_certificate\"");
    await queryRunner.query("DROP TABLE \"claims\"");
  }
}
