import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Semaphore, SemaphoreFullError } from './semaphore';

/** A job the test finishes by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('Semaphore', () => {
  it('runs at most `limit` jobs at once, the rest in arrival order', async () => {
    const semaphore = new Semaphore(2);
    const gates = Array.from({ length: 4 }, gate);
    const started: number[] = [];
    const done = gates.map((g, i) => semaphore.run(async () => {
      started.push(i);
      await g.promise;
    }));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1]);
    gates[1].open();
    await done[1];
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1, 2]);
    gates.forEach((g) => g.open());
    await Promise.all(done);
    assert.deepEqual(started, [0, 1, 2, 3]);
  });

  it('refuses at once, without running it, a job that would wait behind maxWaiting others', async () => {
    const semaphore = new Semaphore(1, 2);
    const hold = gate();
    const ran: number[] = [];
    const accepted = [0, 1, 2].map((i) => semaphore.run(async () => {
      ran.push(i);
      await hold.promise;
    }));
    await assert.rejects(semaphore.run(async () => ran.push(3)), SemaphoreFullError);
    hold.open();
    await Promise.all(accepted);
    assert.deepEqual(ran, [0, 1, 2]);
    // Once the line is short again, jobs are taken.
    await semaphore.run(async () => ran.push(4));
    assert.deepEqual(ran, [0, 1, 2, 4]);
  });
});
