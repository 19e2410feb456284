import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { CheckpointResult, SqliteCheckpointConnection, SqliteCheckpoints } from './sqlite-checkpoints';
import { SqliteWalConnection, SqliteWalSync } from './sqlite-wal-sync';
import { TypeOrmTransactions } from './typeorm-transactions';
import { sqliteWalFile } from '../../test/support/sqlite-wal-file';

const connectionOf = (dataSource: DataSource) => (dataSource.driver as unknown as { databaseConnection: SqliteWalConnection }).databaseConnection;

/** A flush the test releases by hand, recording the descriptors it was given. */
function manualFlush() {
  const pending: { fd: number; release: (err?: Error) => void }[] = [];
  const flush = (fd: number) => new Promise<void>((resolve, reject) => pending.push({ fd, release: (err) => (err ? reject(err) : resolve()) }));
  return { flush, pending };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SqliteWalSync', () => {
  const db = sqliteWalFile('wal-sync-');
  const { file, dataSource } = db;
  before(() => db.open('CREATE TABLE t (n INTEGER)'));
  after(() => db.remove());

  it('leaves an in-memory database alone; on a WAL file, commits with synchronous=NORMAL', async () => {
    const memory = new DataSource({ type: 'better-sqlite3', database: ':memory:' });
    await memory.initialize();
    try {
      assert.equal(SqliteWalSync.forConnection(connectionOf(memory)), null);
    } finally {
      await memory.destroy();
    }
    const sync = SqliteWalSync.forConnection(connectionOf(dataSource), async () => undefined);
    assert.ok(sync);
    assert.equal(connectionOf(dataSource).pragma('synchronous', { simple: true }), 1, 'NORMAL');
    await sync.close();
  });

  it('answers a caller only after a flush of the WAL file that started after its call; callers meanwhile share the next one', async () => {
    const { flush, pending } = manualFlush();
    const sync = SqliteWalSync.forConnection(connectionOf(dataSource), flush)!;
    const done: string[] = [];
    const first = sync.durable().then(() => done.push('first'));
    await tick();
    assert.equal(pending.length, 1, 'one flush started');
    assert.equal(fs.fstatSync(pending[0].fd).ino, fs.statSync(`${file}-wal`).ino, 'the flush is of the WAL file');
    const second = sync.durable().then(() => done.push('second'));
    const third = sync.durable().then(() => done.push('third'));
    await tick();
    assert.equal(pending.length, 1, 'no second flush while one runs');
    pending.shift()!.release();
    await first;
    await tick();
    assert.deepEqual(done, ['first'], 'the later callers wait for a flush that started after they asked');
    assert.equal(pending.length, 1, 'one flush for both later callers');
    pending.shift()!.release();
    await Promise.all([second, third]);
    assert.deepEqual(done, ['first', 'second', 'third']);
    const closing = sync.close();
    await tick();
    pending.shift()?.release();
    await closing;
  });

  it('fails the callers of a flush that fails, and serves the next callers with a new flush', async () => {
    const { flush, pending } = manualFlush();
    const sync = SqliteWalSync.forConnection(connectionOf(dataSource), flush)!;
    const failed = sync.durable();
    await tick();
    pending.shift()!.release(new Error('EIO'));
    await assert.rejects(failed, /EIO/);
    const next = sync.durable();
    await tick();
    pending.shift()!.release();
    await next;
    const closing = sync.close();
    await tick();
    pending.shift()?.release();
    await closing;
  });

  it('closes the WAL descriptor only after a flush that a later caller started on it has ended', async () => {
    const { flush, pending } = manualFlush();
    const sync = SqliteWalSync.forConnection(connectionOf(dataSource), flush)!;
    await dataSource.query('INSERT INTO t (n) VALUES (8)');
    let closed = false;
    const closing = sync.close().then(() => (closed = true));
    await tick();
    assert.equal(pending.length, 1, 'close() flushed what was left');
    // A background write during shutdown: its caller comes while close()'s flush runs, so it gets the next one.
    const late = sync.durable();
    pending.shift()!.release();
    await tick();
    await tick();
    assert.equal(pending.length, 1, "the late caller's flush started on the same descriptor");
    const { fd } = pending[0];
    assert.doesNotThrow(() => fs.fstatSync(fd), 'the descriptor is still open while that flush runs');
    assert.equal(closed, false, 'close() waits for it');
    pending.shift()!.release();
    await late;
    await closing;
    assert.throws(() => fs.fstatSync(fd), /EBADF/, 'then close() closes it');
  });

  it('flushes writes made outside a transaction by itself (no caller waits for them)', async () => {
    const { flush, pending } = manualFlush();
    const sync = SqliteWalSync.forConnection(connectionOf(dataSource), flush)!;
    await dataSource.query('INSERT INTO t (n) VALUES (7)');
    const deadline = Date.now() + 2000;
    while (pending.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(pending.length, 1, 'a background flush followed the write');
    pending.shift()!.release();
    const closing = sync.close();
    await tick();
    pending.shift()?.release();
    await closing;
  });
});

describe('TypeOrmTransactions on a SQLite file: answered after the WAL flush, the next group not waiting for it', () => {
  const db = sqliteWalFile('wal-tx-');
  const { dataSource } = db;
  let transactions: TypeOrmTransactions;
  // The node:fs module itself (an `import *` is a copy of it here): SqliteWalSync calls its fdatasync.
  const nodeFs = createRequire(__filename)('node:fs') as { fdatasync: typeof fs.fdatasync };
  const realFdatasync = nodeFs.fdatasync;
  /** fdatasync calls held until released, so the test sees what happens while a flush runs. */
  const held: (() => void)[] = [];
  before(async () => {
    await db.open('CREATE TABLE g (n INTEGER PRIMARY KEY)');
    transactions = new TypeOrmTransactions(dataSource, { maxBatch: 8, maxWaitMs: 0 });
    nodeFs.fdatasync = ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) =>
      void held.push(() => realFdatasync(fd, callback))) as unknown as typeof fs.fdatasync;
  });
  after(async () => {
    nodeFs.fdatasync = realFdatasync;
    held.splice(0).forEach((release) => release());
    await transactions.onModuleDestroy();
    await db.remove();
  });

  const rows = async () => (await dataSource.query('SELECT n FROM g ORDER BY n')).map((row: { n: number }) => row.n);
  const waitFor = async (condition: () => boolean | Promise<boolean>) => {
    const deadline = Date.now() + 2000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  it('resolves run() and runGrouped() only once fdatasync of the WAL returned; a later group commits meanwhile', async () => {
    let firstAnswered = false;
    const first = transactions.runGrouped(() => transactions.sql('INSERT INTO g (n) VALUES (1)')).then(() => (firstAnswered = true));
    await waitFor(() => held.length === 1);
    assert.deepEqual(await rows(), [1], 'committed');
    assert.equal(firstAnswered, false, 'not answered while the WAL flush runs');

    let secondAnswered = false;
    const second = transactions.run(() => transactions.sql('INSERT INTO g (n) VALUES (2)')).then(() => (secondAnswered = true));
    await waitFor(async () => (await rows()).length === 2);
    assert.equal(firstAnswered, false, 'the next transaction committed while the first flush ran');

    held.shift()!();
    await first;
    assert.equal(secondAnswered, false, 'its commit came after the flush that started: it waits for a flush of its own');
    await waitFor(() => held.length === 1);
    held.shift()!();
    await second;
  });
});

describe('SqliteCheckpoints: the WAL copied on a thread under load, never started at low load', () => {
  const db = sqliteWalFile('wal-ckpt-');
  const { file, dataSource } = db;
  before(() => db.open('CREATE TABLE c (n INTEGER PRIMARY KEY, body TEXT)'));
  after(() => db.remove());

  it('is due only after 16 commits within 250 ms, 250 ms after the last; copies the whole WAL when no commit runs meanwhile', async () => {
    const checkpoints = new SqliteCheckpoints(connectionOf(dataSource) as unknown as SqliteCheckpointConnection);
    try {
      assert.equal(connectionOf(dataSource).pragma('wal_autocheckpoint', { simple: true }), 4000, "SQLite's own checkpoint only at 4,000 pages");
      const start = Date.now() + 1000;
      for (let i = 0; i < 100; i++) assert.equal(checkpoints.due(start + i * 20), false, 'not due at 50 commits a second');
      const now = start + 5000;
      for (let i = 1; i < 16; i++) assert.equal(checkpoints.due(now), false, `not due after ${i} commits`);
      assert.equal(checkpoints.due(now), true, 'due after 16 commits within 250 ms');
      for (let i = 0; i < 50; i++) await dataSource.query('INSERT INTO c (body) VALUES (?)', ['x'.repeat(2000)]);
      const result = await checkpoints.run();
      assert.ok(result && result.log > 0, `frames in the WAL: ${JSON.stringify(result)}`);
      assert.equal(result.checkpointed, result.log, 'every frame copied');
      for (let i = 0; i < 16; i++) assert.equal(checkpoints.due(), false, 'not again within 250 ms');
    } finally {
      await checkpoints.close();
    }
  });

  it('TypeOrmTransactions gives checkpoints a turn under load and the WAL starts over instead of growing', async () => {
    const transactions = new TypeOrmTransactions(dataSource, { maxBatch: 4, maxWaitMs: 0 });
    const runs: (CheckpointResult | null)[] = [];
    const original = SqliteCheckpoints.prototype.run;
    SqliteCheckpoints.prototype.run = async function (this: SqliteCheckpoints) {
      const result = await original.call(this);
      runs.push(result);
      return result;
    };
    try {
      const body = 'y'.repeat(4000);
      // The WAL header's salts change each time SQLite starts the WAL over from its beginning (sqlite.org/walformat.html).
      const salts = new Set<string>();
      const readSalt = () => {
        const fd = fs.openSync(`${file}-wal`, 'r');
        try {
          const header = Buffer.alloc(32);
          fs.readSync(fd, header, 0, 32, 0);
          salts.add(header.subarray(16, 24).toString('hex'));
        } finally {
          fs.closeSync(fd);
        }
      };
      const until = Date.now() + 10_000;
      while (Date.now() < until && (runs.length < 4 || salts.size < 2)) {
        await Promise.all(Array.from({ length: 8 }, () => transactions.runGrouped(() => transactions.sql('INSERT INTO c (body) VALUES (?)', [body]))));
        readSalt();
      }
      assert.ok(runs.length >= 2, `checkpoints ran on the thread: ${runs.length}`);
      // The second of each cycle had its turn: nothing was committed while it ran.
      for (let i = 1; i < runs.length; i += 2) assert.ok(runs[i] && runs[i]!.checkpointed === runs[i]!.log, `the WAL copied whole: ${JSON.stringify(runs[i])}`);
      // Far below SQLite's own checkpoint at 4,000 pages (16 MB), the WAL was started over: the thread's checkpoints did it.
      assert.ok(salts.size >= 2, `the WAL restarted (${salts.size} header salts seen)`);
      assert.ok(fs.statSync(`${file}-wal`).size < 4000 * 4096, `WAL file ${fs.statSync(`${file}-wal`).size} bytes`);
    } finally {
      SqliteCheckpoints.prototype.run = original;
      await transactions.onModuleDestroy();
    }
  });
});
