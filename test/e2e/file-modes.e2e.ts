import 'reflect-metadata';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApp } from '../../src/app.factory';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { loadConfig } from '../../src/app.config';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';

function modeOf(file: string): string {
  return (fs.statSync(file).mode & 0o777).toString(8);
}

/**
 * The embedded database holds sealed CA keys, API key hashes and the audit log: its files are 0600 whatever the
 * umask and whatever the mode of a data directory that existed before the service first started.
 */
describe('files in the data directory', () => {
  let previousUmask: number;
  let dataDir: string;

  before(() => {
    // The usual umask, under which SQLite would create its files 0644.
    previousUmask = process.umask(0o022);
  });
  after(() => {
    process.umask(previousUmask);
  });

  async function start(env: Record<string, string> = {}): Promise<NestFastifyApplication> {
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'error', ...env });
    const app = await createApp(config);
    // Writes: the bootstrap key, with its audit event.
    await app.get(ApiKeysService).bootstrap(generateApiKey().key);
    return app;
  }

  it('a new database, its WAL and shared-memory files and the master key are 0600 in a data directory that already existed (0755)', async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-modes-'));
    fs.chmodSync(dataDir, 0o755);
    const database = path.join(dataDir, 'fleet-pki.sqlite');
    const app = await start();
    try {
      assert.ok(fs.existsSync(`${database}-wal`), 'the database is in WAL mode and has written');
      for (const file of [database, `${database}-wal`, `${database}-shm`, path.join(dataDir, 'master.key')]) {
        assert.equal(modeOf(file), '600', file);
      }
    } finally {
      await app.close();
    }
  });

  it('an existing database left 0644 (and its companions) is made 0600 at start, and stays readable', async () => {
    const database = path.join(dataDir, 'fleet-pki.sqlite');
    // As an earlier version left them (empty companions, as a crash may leave them).
    for (const file of [database, `${database}-wal`, `${database}-shm`, `${database}-journal`]) {
      if (!fs.existsSync(file)) fs.writeFileSync(file, '');
      fs.chmodSync(file, 0o644);
    }
    const app = await start();
    try {
      for (const file of [database, `${database}-wal`, `${database}-shm`, `${database}-journal`]) assert.equal(modeOf(file), '600', file);
      // The first start's data is still there (its key and this start's).
      const [{ n }] = await app.get(TypeOrmTransactions).sql<{ n: number }>('SELECT COUNT(*) AS n FROM api_keys');
      assert.equal(Number(n), 2);
    } finally {
      await app.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a database named by DATABASE_URL outside the data directory is 0600 too', async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-modes-'));
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-db-'));
    fs.chmodSync(elsewhere, 0o755);
    const database = path.join(elsewhere, 'pki.sqlite');
    const app = await start({ DATABASE_URL: `sqlite:${database}` });
    try {
      for (const file of [database, `${database}-wal`, `${database}-shm`]) assert.equal(modeOf(file), '600', file);
    } finally {
      await app.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
