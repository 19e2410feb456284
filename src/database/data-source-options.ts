import { DataSourceOptions } from 'typeorm';
import { DatabaseConfig } from '../config/config';
import { ENTITIES } from './entities';
import { restrictSqliteFiles } from './sqlite-files';
import { POSTGRES_MIGRATIONS } from '../../migrations/postgres';
import { SQLITE_MIGRATIONS } from '../../migrations/sqlite';

/**
 * TypeORM options for either driver. Schema changes only ever come from migrations/ (never `synchronize`);
 * each driver has its own generated migration set, checked for drift against these entities in CI.
 */
export function dataSourceOptions(database: DatabaseConfig): DataSourceOptions {
  if (database.driver === 'sqlite') {
    return {
      type: 'better-sqlite3',
      database: database.file,
      entities: ENTITIES,
      migrations: SQLITE_MIGRATIONS,
      migrationsTableName: 'schema_migrations',
      synchronize: false,
      enableWAL: true,
      // Wait for a concurrent writer (e.g. `npm run migrate` beside a running service) instead of failing.
      timeout: 10_000,
      // Runs once the file is open and before TypeORM writes anything (the WAL switch comes after it).
      prepareDatabase: () => restrictSqliteFiles(database.file),
    };
  }
  return {
    type: 'postgres',
    url: database.url,
    entities: ENTITIES,
    migrations: POSTGRES_MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    synchronize: false,
    poolSize: database.poolSize,
  };
}
