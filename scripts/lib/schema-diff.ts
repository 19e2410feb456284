import { DataSource } from 'typeorm';
import { DatabaseConfig } from '../../src/config/config';
import { dataSourceOptions } from '../../src/database/data-source-options';

export interface SchemaDiff {
  up: string[];
  down: string[];
}

/**
 * Runs every committed migration on an empty database, then asks TypeORM what it would still change to
 * match the entities: exactly what `typeorm migration:generate` would write. Empty means no drift.
 */
export async function schemaDiffAfterMigrations(database: DatabaseConfig): Promise<SchemaDiff> {
  const dataSource = new DataSource({ ...dataSourceOptions(database), logging: false });
  await dataSource.initialize();
  try {
    await dataSource.runMigrations({ transaction: 'each' });
    const sql = await dataSource.driver.createSchemaBuilder().log();
    return {
      up: sql.upQueries.map((q) => q.query),
      down: sql.downQueries.map((q) => q.query).reverse(),
    };
  } finally {
    await dataSource.destroy();
  }
}
