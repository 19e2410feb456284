import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataSource } from 'typeorm';

/**
 * A TypeORM data source on a fresh SQLite file in WAL mode, as the service runs on: the fixture of the durable-commit
 * specs (src/database/sqlite-wal-sync.spec.ts, sqlite-checkpoints.spec.ts). `open` creates the file with its schema,
 * `remove` closes the connection and deletes the directory; the suite calls them from its hooks, in its own order.
 */
export function sqliteWalFile(prefix: string): { dir: string; file: string; dataSource: DataSource; open(schema: string): Promise<void>; remove(): Promise<void> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const file = path.join(dir, 'test.sqlite');
  const dataSource = new DataSource({ type: 'better-sqlite3', database: file, enableWAL: true });
  return {
    dir,
    file,
    dataSource,
    async open(schema) {
      await dataSource.initialize();
      await dataSource.query(schema);
    },
    async remove() {
      if (dataSource.isInitialized) await dataSource.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
