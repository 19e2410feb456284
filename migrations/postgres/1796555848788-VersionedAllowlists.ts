import { MigrationInterface, QueryRunner } from 'typeorm';

export class VersionedAllowlists1796555848788 implements MigrationInterface {
  name = 'VersionedAllowlists1796555848788';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"claim_allowlists\" (\"id\" SERIAL NOT NULL, \"claim_id\" character varying(36) NOT NULL, \"status\" character varying(16) NOT NULL, \"size\" integer NOT NULL DEFAULT '0', \"created_at\" character varying(32) NOT NULL, \"updated_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_1ad87820e679e8b1d8836e76c0b\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_claim_allowlists_status\" ON \"claim_allowlists\"  (\"status\") ");
    await queryRunner.query("CREATE TABLE \"claim_allowlist_serials\" (\"allowlist_id\" integer NOT NULL, \"device_serial\" character varying(64) NOT NULL, CONSTRAINT \"PK_94bfd46dc85c855de3fe19968dc\" PRIMARY KEY (\"allowlist_id\", \"device_serial\"))");
    await queryRunner.query("ALTER TABLE \"claims\" ADD \"allowlist_id\" integer");
    // Hand-written: each existing allow-list becomes its claim's active version, then the one-table layout goes.
    await queryRunner.query("INSERT INTO \"claim_allowlists\" (\"claim_id\", \"status\", \"size\", \"created_at\", \"updated_at\") SELECT \"id\", 'active', \"allowlist_size\", \"created_at\", \"created_at\" FROM \"claims\" WHERE \"allowlist_size\" IS NOT NULL ORDER BY \"created_at\", \"id\"");
    await queryRunner.query("INSERT INTO \"claim_allowlist_serials\" (\"allowlist_id\", \"device_serial\") SELECT \"l\".\"id\", \"a\".\"device_serial\" FROM \"claim_allowlist\" \"a\" JOIN \"claim_allowlists\" \"l\" ON \"l\".\"claim_id\" = \"a\".\"claim_id\"");
    await queryRunner.query("UPDATE \"claims\" SET \"allowlist_id\" = (SELECT \"l\".\"id\" FROM \"claim_allowlists\" \"l\" WHERE \"l\".\"claim_id\" = \"claims\".\"id\") WHERE \"allowlist_size\" IS NOT NULL");
    await queryRunner.query("DROP TABLE \"claim_allowlist\"");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Hand-written: the active versions go back to the one-table layout.
    await queryRunner.query("CREATE TABLE \"claim_allowlist\" (\"claim_id\" character varying(36) NOT NULL, \"device_serial\" character varying(64) NOT NULL, CONSTRAINT \"PK_e58f31c1b58f5d1e296c95faf92\" PRIMARY KEY (\"claim_id\", \"device_serial\"))");
    await queryRunner.query("INSERT INTO \"claim_allowlist\" (\"claim_id\", \"device_serial\") SELECT \"c\".\"id\", \"s\".\"device_serial\" FROM \"claims\" \"c\" JOIN \"claim_allowlist_serials\" \"s\" ON \"s\".\"allowlist_id\" = \"c\".\"allowlist_id\"");
    await queryRunner.query("ALTER TABLE \"claims\" DROP COLUMN \"allowlist_id\"");
    await queryRunner.query("DROP TABLE \"claim_allowlist_serials\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_claim_allowlists_status\"");
    await queryRunner.query("DROP TABLE \"claim_allowlists\"");
  }
}
