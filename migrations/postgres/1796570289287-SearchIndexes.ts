import { MigrationInterface, QueryRunner } from 'typeorm';

export class SearchIndexes1796570289287 implements MigrationInterface {
  name = 'SearchIndexes1796570289287';

  public async up(queryRunner: QueryRunner): Promise<void> {
    // Search indexes (docs/architecture.md#search-indexes): the new ones first, then the single-column ones they replace.
    await queryRunner.query("CREATE INDEX \"idx_certificates_serial\" ON \"certificates\"  (\"serial\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status_not_after\" ON \"certificates\"  (\"status\", \"not_after\", \"authority_id\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status_issued\" ON \"certificates\"  (\"status\", \"issued_at\", \"id\", \"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_issued\" ON \"certificates\"  (\"thing_name\", \"issued_at\", \"id\") ");
    // Declared in the entity with synchronize: false; TypeORM cannot describe an expression index.
    await queryRunner.query("CREATE INDEX \"idx_certificates_expiry_buckets\" ON \"certificates\" (\"status\", substr(\"not_after\", 1, 9), \"issued_at\", \"id\", \"not_after\", \"authority_id\")");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_thing_name\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_status\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_not_after\"");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_expiry_buckets\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_thing_issued\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_status_issued\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_status_not_after\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_certificates_serial\"");
    await queryRunner.query("CREATE INDEX \"idx_certificates_not_after\" ON \"certificates\" USING btree (\"not_after\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_status\" ON \"certificates\" USING btree (\"status\") ");
    await queryRunner.query("CREATE INDEX \"idx_certificates_thing_name\" ON \"certificates\" USING btree (\"thing_name\") ");
  }
}
