import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointResult, SqliteCheckpointConnection, SqliteCheckpoints } from './sqlite-checkpoints';
import { sqliteWalFile } from '../../test/support/sqlite-wal-file';

/**
 * SqliteCheckpoints against threads that misbehave (docs/architecture.md, "Durable commits on SQLite"): an answer
 * after its request gave up, a thread that exits without an error, a close while a checkpoint runs; and the deferred
 * checkpoint of a large write (a CRL) on the real thread.
 */
describe('SqliteCheckpoints: answers, thread exits and close', () => {
  const db = sqliteWalFile('ckpt-');
  const { dir, file, dataSource } = db;
  const connection = () => (dataSource.driver as unknown as { databaseConnection: SqliteCheckpointConnection }).databaseConnection;

  /**
   * A stand-in for sqlite-checkpoint.thread.js, in plain JavaScript: it answers the nth request it receives with
   * log = checkpointed = n (and the request's id, if it had one), after `delays[n - 1]` ms of a blocked thread (the
   * last delay for later requests). With `holdFirst`, it answers its first request only once the file `<name>.release`
   * exists. With `exitOnce`, the first thread started exits (code 0, no error) on its first request instead, and the
   * threads after it answer. With `silent`, it never answers.
   */
  const script = (name: string, options: { delays?: number[]; holdFirst?: boolean; exitOnce?: boolean; silent?: boolean }) => {
    const target = path.join(dir, `${name}.js`);
    fs.writeFileSync(
      target,
      `const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const delays = ${JSON.stringify(options.delays ?? [0])};
const marker = ${JSON.stringify(path.join(dir, `${name}.exited`))};
const release = ${JSON.stringify(path.join(dir, `${name}.release`))};
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
let n = 0;
parentPort.on('message', (request) => {
  n++;
  if (${Boolean(options.exitOnce)} && !fs.existsSync(marker)) {
    fs.writeFileSync(marker, '');
    process.exit(0);
  }
  if (${Boolean(options.silent)}) return;
  if (${Boolean(options.holdFirst)} && n === 1) while (!fs.existsSync(release)) sleep(5);
  const delay = delays[Math.min(n, delays.length) - 1];
  if (delay > 0) sleep(delay);
  parentPort.postMessage({ id: request && request.id, ok: true, log: n, checkpointed: n });
});
`,
    );
    return target;
  };

  before(() => db.open('CREATE TABLE c (n INTEGER PRIMARY KEY, body TEXT)'));
  after(() => db.remove());

  it('settles each request only with its own answer: one that comes after its request gave up settles nothing', async () => {
    // The first request gives up after 300 ms; its answer comes once the second request was sent, followed at once by
    // the answer to the second.
    const checkpoints = new SqliteCheckpoints(connection(), script('late', { holdFirst: true }), 300);
    try {
      assert.equal(await checkpoints.run(), null, 'the first request gave up');
      const pending = checkpoints.run();
      fs.writeFileSync(path.join(dir, 'late.release'), '');
      const second = await pending;
      assert.deepEqual(second, { log: 2, checkpointed: 2 } satisfies CheckpointResult, 'the second request got the answer to itself, not the late one');
    } finally {
      await checkpoints.close();
    }
  });

  it('fails a pending request as soon as its thread exits without an error, and starts a new thread for the next', async () => {
    const checkpoints = new SqliteCheckpoints(connection(), script('exits', { exitOnce: true }), 20_000);
    try {
      const started = Date.now();
      assert.equal(await checkpoints.run(), null, 'the thread exited without answering');
      assert.ok(Date.now() - started < 5_000, `settled at the exit, not at the timeout (${Date.now() - started} ms)`);
      assert.deepEqual(await checkpoints.run(), { log: 1, checkpointed: 1 }, "a new thread answered the next request (its first)");
    } finally {
      await checkpoints.close();
    }
  });

  it('close waits for a running checkpoint (bounded by the timeout) and leaves no request pending; later requests fail at once', async () => {
    const slow = new SqliteCheckpoints(connection(), script('slow', { delays: [300] }), 20_000);
    const running = slow.run();
    await slow.close();
    assert.deepEqual(await running, { log: 1, checkpointed: 1 }, 'the running checkpoint finished before close returned');
    const started = Date.now();
    assert.equal(await slow.run(), null, 'no checkpoint after close');
    assert.ok(Date.now() - started < 100, 'and no wait for one');

    const silent = new SqliteCheckpoints(connection(), script('silent', { silent: true }), 200);
    const unanswered = silent.run();
    let settled = false;
    void unanswered.then(() => (settled = true));
    await silent.close();
    assert.equal(settled, true, 'the unanswered request settled before close returned');
    assert.equal(await unanswered, null);
  });

  it('a large write defers SQLite\'s own checkpoint on the connection; the thread checkpoints after the last one, which brings it back', async () => {
    const checkpoints = new SqliteCheckpoints(connection());
    const autocheckpoint = () => Number(connection().pragma('wal_autocheckpoint', { simple: true }));
    const write = (rows: number) => async () => {
      assert.equal(autocheckpoint(), 0, "SQLite's own checkpoint is off while the write runs");
      for (let i = 0; i < rows; i++) await dataSource.query('INSERT INTO c (body) VALUES (?)', ['z'.repeat(4000)]);
      assert.equal(autocheckpoint(), 0);
      return rows;
    };
    try {
      assert.equal(autocheckpoint(), 4000);
      const sizeBefore = fs.statSync(file).size;
      let releaseFirst!: () => void;
      const firstMayEnd = new Promise<void>((resolve) => (releaseFirst = resolve));
      const first = checkpoints.deferringCheckpoints(async () => {
        const rows = await write(200)();
        await firstMayEnd;
        return rows;
      });
      const second = checkpoints.deferringCheckpoints(write(100));
      assert.equal(await second, 100, 'the write answers');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(autocheckpoint(), 0, 'still off: another write deferring it runs');
      releaseFirst();
      assert.equal(await first, 200);
      // The caller did not wait for the checkpoint: close does.
      await checkpoints.close();
      assert.equal(autocheckpoint(), 4000, "SQLite's own checkpoint is back");
      assert.ok(fs.statSync(file).size >= sizeBefore + 300 * 4000, `the thread copied the WAL into the database file (${fs.statSync(file).size} bytes)`);
    } finally {
      await checkpoints.close();
    }
  });
});
