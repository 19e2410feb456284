import { MigrationInterface, QueryRunner } from 'typeorm';

export class AuthorityLeafIssuance1796553572584 implements MigrationInterface {
  name = 'AuthorityLeafIssuance1796553572584';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"uq_authorities_public_key\"");
    await queryRunner.query("CREATE TABLE \"temporary_authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32), \"usage\" varchar(16) NOT NULL DEFAULT ('devices'), \"successor_id\" varchar(36), \"retiring_at\" varchar(32), \"allow_leaf_issuance\" boolean NOT NULL DEFAULT (0))");
    await queryRunner.query("INSERT INTO \"temporary_authorities\"(\"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\", \"successor_id\", \"retiring_at\") SELECT \"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\", \"successor_id\", \"retiring_at\" FROM \"authorities\"");
    await queryRunner.query("DROP TABLE \"authorities\"");
    await queryRunner.query("ALTER TABLE \"temporary_authorities\" RENAME TO \"authorities\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
    // Every authority that exists at the upgrade keeps signing end-entity certificates as before: a root may be a
    // claim's authority, or a rotation's successor, that has not issued yet, and must not start failing exchanges and
    // renewals with AUTHORITY_IS_ROOT. Only authorities created after the upgrade get the new default (false for roots).
    await queryRunner.query("UPDATE \"authorities\" SET \"allow_leaf_issuance\" = 1");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"uq_authorities_public_key\"");
    await queryRunner.query("ALTER TABLE \"authorities\" RENAME TO \"temporary_authorities\"");
    await queryRunner.query("CREATE TABLE \"authorities\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"name\" varchar(200) NOT NULL, \"type\" varchar(16) NOT NULL, \"parent_id\" varchar(36), \"status\" varchar(16) NOT NULL, \"key_backend\" varchar(16) NOT NULL, \"key_spec\" varchar(16) NOT NULL, \"key_ref\" varchar(2048) NOT NULL, \"public_key_sha256\" varchar(64) NOT NULL, \"subject\" text NOT NULL, \"serial\" varchar(64) NOT NULL, \"fingerprint\" varchar(64) NOT NULL, \"path_length\" integer, \"not_before\" varchar(32) NOT NULL, \"not_after\" varchar(32) NOT NULL, \"certificate_der\" text NOT NULL, \"crl_number\" integer NOT NULL DEFAULT (0), \"revocation_count\" integer NOT NULL DEFAULT (0), \"created_at\" varchar(32) NOT NULL, \"disabled_at\" varchar(32), \"usage\" varchar(16) NOT NULL DEFAULT ('devices'), \"successor_id\" varchar(36), \"retiring_at\" varchar(32))");
    await queryRunner.query("INSERT INTO \"authorities\"(\"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\", \"successor_id\", \"retiring_at\") SELECT \"id\", \"name\", \"type\", \"parent_id\", \"status\", \"key_backend\", \"key_spec\", \"key_ref\", \"public_key_sha256\", \"subject\", \"serial\", \"fingerprint\", \"path_length\", \"not_before\", \"not_after\", \"certificate_der\", \"crl_number\", \"revocation_count\", \"created_at\", \"disabled_at\", \"usage\", \"successor_id\", \"retiring_at\" FROM \"temporary_authorities\"");
    await queryRunner.query("DROP TABLE \"temporary_authorities\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\" (\"public_key_sha256\") ");
  }
}
