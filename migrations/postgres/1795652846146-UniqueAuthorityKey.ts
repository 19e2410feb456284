import { MigrationInterface, QueryRunner } from 'typeorm';

export class UniqueAuthorityKey1795652846146 implements MigrationInterface {
  name = 'UniqueAuthorityKey1795652846146';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"idx_authorities_public_key\"");
    await queryRunner.query("CREATE UNIQUE INDEX \"uq_authorities_public_key\" ON \"authorities\"  (\"public_key_sha256\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"uq_authorities_public_key\"");
    await queryRunner.query("CREATE INDEX \"idx_authorities_public_key\" ON \"authorities\" USING btree (\"public_key_sha256\") ");
  }
}
