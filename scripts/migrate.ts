/** Runs pending migrations against the configured database (the service also does this at start-up). */
import 'reflect-metadata';
import * as fs from 'node:fs';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/app.config';
import { dataSourceOptions } from '../src/database/data-source-options';

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.database.driver === 'sqlite') fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const dataSource = new DataSource(dataSourceOptions(config.database));
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    console.log(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}` : 'database is up to date');
  } finally {
    await dataSource.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
