/**
 * CI drift check: for each driver, run all migrations on an empty database and fail if the entities
 * still differ from the result. PostgreSQL is checked when FLEET_PKI_TEST_PG_URL is set (CI sets it).
 */
import 'reflect-metadata';
import { schemaDiffAfterMigrations } from './lib/schema-diff';
import { PG_ENV, temporaryDatabase } from './lib/temporary-database';

async function main(): Promise<void> {
  let failed = false;
  const drivers: ('sqlite' | 'postgres')[] = ['sqlite'];
  if (process.env[PG_ENV]) drivers.push('postgres');
  else console.log(`postgres: SKIPPED (set ${PG_ENV} to check PostgreSQL migrations)`);
  for (const driver of drivers) {
    const db = await temporaryDatabase(driver);
    try {
      const diff = await schemaDiffAfterMigrations(db.config);
      if (diff.up.length) {
        failed = true;
        console.error(`${driver}: entities and migrations differ; run npm run migration:generate -- <Name>. Pending:`);
        for (const query of diff.up) console.error(`  ${query}`);
      } else {
        console.log(`${driver}: migrations match the entities`);
      }
    } finally {
      await db.drop();
    }
  }
  if (failed) process.exit(1);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
