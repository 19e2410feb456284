import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * CRL chunks stored out of line without compression (docs/architecture.md "CRLs"): PostgreSQL's default (EXTENDED)
 * ran pglz over every 5.6 MB base64 chunk, 1.3–2.8 s of the server's CPU for a CRL of a million entries, against
 * 0.5–0.7 s uncompressed (docs/benchmarks.md, "CRL"); the rows are ~30 % larger. Chunks stored before keep their
 * compression and read the same. PostgreSQL only: TypeORM models no storage, so no entity changes and SQLite has
 * nothing to do.
 */
export class CrlChunksUncompressed1796600500000 implements MigrationInterface {
  name = 'CrlChunksUncompressed1796600500000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "crl_chunks" ALTER COLUMN "bytes" SET STORAGE EXTERNAL');
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "crl_chunks" ALTER COLUMN "bytes" SET STORAGE EXTENDED');
  }
}
