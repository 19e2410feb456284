import { MigrationInterface, QueryRunner } from 'typeorm';

export class ManifestImports1796600350000 implements MigrationInterface {
  name = 'ManifestImports1796600350000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"manifest_imports\" (\"id\" character varying(36) NOT NULL, \"content_sha256\" character varying(64) NOT NULL, \"signer_fingerprint\" character varying(64) NOT NULL, \"signer_der\" text NOT NULL, \"signer_subject\" text NOT NULL, \"registration\" character varying(16) NOT NULL, \"iot_target_id\" character varying(64), \"policy_name\" character varying(128), \"file_name\" character varying(128) NOT NULL, \"size_bytes\" integer NOT NULL, \"status\" character varying(16) NOT NULL, \"total\" integer NOT NULL, \"next_index\" integer NOT NULL DEFAULT '0', \"imported\" integer NOT NULL DEFAULT '0', \"skipped\" integer NOT NULL DEFAULT '0', \"failed\" integer NOT NULL DEFAULT '0', \"failures\" text NOT NULL, \"error\" text, \"created_by\" character varying(128) NOT NULL, \"created_at\" character varying(32) NOT NULL, \"updated_at\" character varying(32) NOT NULL, \"finished_at\" character varying(32), CONSTRAINT \"PK_5cedd3573a30e7fe9dd66743be2\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_manifest_imports_content\" ON \"manifest_imports\"  (\"content_sha256\") ");
    await queryRunner.query("CREATE INDEX \"idx_manifest_imports_status\" ON \"manifest_imports\"  (\"status\", \"created_at\") ");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"origin\" character varying(16) NOT NULL DEFAULT 'issued'");
    await queryRunner.query("ALTER TABLE \"certificates\" ADD \"imported_chain\" text");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"imported_chain\"");
    await queryRunner.query("ALTER TABLE \"certificates\" DROP COLUMN \"origin\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_manifest_imports_status\"");
    await queryRunner.query("DROP INDEX \"public\".\"uq_manifest_imports_content\"");
    await queryRunner.query("DROP TABLE \"manifest_imports\"");
  }
}
