import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DatabaseConfig } from '../../src/config/config';

/**
 * Environment variable naming a PostgreSQL server (an admin URL, e.g. postgres://postgres@127.0.0.1:5432/postgres)
 * on which tests and checks create throw-away databases. Unset: PostgreSQL suites are skipped.
 */
export const PG_ENV = 'FLEET_PKI_TEST_PG_URL';

export interface TemporaryDatabase {
  config: DatabaseConfig;
  drop(): Promise<void>;
}

/** A fresh, empty database of the given driver, unique to this call. */
export async function temporaryDatabase(driver: 'sqlite' | 'postgres'): Promise<TemporaryDatabase> {
  if (driver === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-'));
    return {
      config: { driver: 'sqlite', file: path.join(dir, 'test.sqlite') },
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const adminUrl = process.env[PG_ENV];
  if (!adminUrl) throw new Error(`${PG_ENV} is not set`);
  const name = `fleetpki_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    config: { driver: 'postgres', url: url.toString(), poolSize: 20 },
    drop: () => withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
