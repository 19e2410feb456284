import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ThreadPool, ThreadPoolError, ThreadTaskError } from './thread-pool';

/**
 * Real threads running a small script: doubles a number, throws on 'throw', exits the thread on 'crash' (as a native
 * fault or an out-of-memory kill would end it), holds the thread for `sleep` ms.
 */
const SCRIPT = `
const { serveThreadTasks } = require(${JSON.stringify(require.resolve('./thread-pool'))});
serveThreadTasks(__filename, (request) => {
  if (request === 'crash') process.exit(7);
  if (request === 'throw') throw new Error('boom');
  if (request && request.sleep) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, request.sleep);
  return typeof request === 'number' ? request * 2 : request;
}, (error) => ({ message: error.message }));
`;

describe('ThreadPool', () => {
  let dir: string;
  let script: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thread-pool-'));
    script = path.join(dir, 'thread.js');
    fs.writeFileSync(script, SCRIPT);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers each task from its threads', async () => {
    const pool = new ThreadPool<number, number>(script, 2, 100);
    try {
      assert.deepEqual(await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run(i))), Array.from({ length: 20 }, (_, i) => i * 2));
    } finally {
      await pool.close();
    }
  });

  it("hands back a task's own error as plain data and keeps the thread", async () => {
    const pool = new ThreadPool<unknown, unknown>(script, 1, 10);
    try {
      await assert.rejects(pool.run('throw'), (error: unknown) => error instanceof ThreadTaskError && (error.payload as { message: string }).message === 'boom');
      assert.equal(await pool.run(21), 42);
    } finally {
      await pool.close();
    }
  });

  it('fails the tasks of a thread that dies and replaces the thread', async () => {
    const pool = new ThreadPool<unknown, unknown>(script, 1, 10);
    try {
      assert.equal(await pool.run(1), 2);
      await assert.rejects(pool.run('crash'), (error: unknown) => error instanceof ThreadPoolError && error.reason === 'crashed');
      assert.equal(await pool.run(5), 10);
    } finally {
      await pool.close();
    }
  });

  it('refuses a task at once when the waiting line is full, and runs the waiting ones', async () => {
    const pool = new ThreadPool<unknown, unknown>(script, 1, 2);
    try {
      // 4 tasks go to the one thread, 2 wait; the 7th is refused.
      const accepted = Array.from({ length: 6 }, (_, i) => pool.run({ sleep: 50, i }));
      await assert.rejects(pool.run(1), (error: unknown) => error instanceof ThreadPoolError && error.reason === 'full');
      assert.equal((await Promise.all(accepted)).length, 6);
      assert.equal(await pool.run(4), 8);
    } finally {
      await pool.close();
    }
  });

  it('fails running and waiting tasks on close, and refuses new ones', async () => {
    const pool = new ThreadPool<unknown, unknown>(script, 1, 10);
    const pending = Promise.allSettled(Array.from({ length: 6 }, () => pool.run({ sleep: 200 })));
    await pool.close();
    for (const task of await pending) assert.ok(task.status === 'rejected' && task.reason instanceof ThreadPoolError && task.reason.reason === 'closed');
    await assert.rejects(pool.run(1), (error: unknown) => error instanceof ThreadPoolError && error.reason === 'closed');
  });
});
