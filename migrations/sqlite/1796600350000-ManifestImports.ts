import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secure-element manifest imports (docs/secure-elements.md). The certificates columns are added in place (ALTER TABLE
 * ADD COLUMN): a table rebuild would drop the expression index idx_certificates_expiry_buckets.
 */
export class ManifestImports1796600350000 implements MigrationInterface {
  name = 'ManifestImports1796600350000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"manifest_imports\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"content_sha256\" varchar(64) NOT NULL, \"signer_fingerprint\" varchar(64) NOT NULL, \"signer_der\" text NOT NULL, \"signer_subject\" text NOT NULL, \"registration\" varchar(16) NOT NULL, \"iot_target_id\" varchar(64), \"policy_name\" varchar(128), \"file_name\" varchar(128) NOT NULL, \"size_bytes\" integer NOT NULL, \"status\" varchar(16) NOT NULL, \"total\" integer NOT NULL, \"next_index\" integer NOT NULL DEFAULT (0), \"imported\" integer NOT NULL DEFAULT (0), \"skipped\" integer NOT NULL DEFAULT (0), \"failed\" integer NOT NULL DEFAULT (0), \"failures\" text NOT NULL, \"error\" text, \"created_by\" varchar(128) NOT NULL, \"created_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL, \"finished_at\" varchar(32))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_manifest_imports_content\" ON \"manifest_imports\" (\"content_sha256\") ");
    await queryRunner.query("CREATE INDEX \"idx_manifest_imports_status\" ON \"manifest_imports\" (\"status\", \"created_at\") ");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD COLUMN \"origin\" varchar(16) NOT NULL DEFAULT ('issued')");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD COLUMN \"imported_chain\" text");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"imported_chain\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"origin\"");
    await queryRunner.query("DROP INDEX \"idx_manifest_imports_status\"");
    await queryRunner.query("DROP INDEX \"uq_manifest_imports_content\"");
    await queryRunner.query("DROP TABLE \"manifest_imports\"");
  }
}
