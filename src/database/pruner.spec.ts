import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/config';
import { Pruner } from './pruner';

const NOW = new Date('2027-01-01T00:00:00Z');
const clock: Clock = { now: () => NOW };
const pruner = (batchSize: number) => new Pruner(clock, { pruning: { intervalSeconds: 0, batchSize, pauseMs: 0 } } as AppConfig);

/** A table of `rows` expired rows that deletes at most `limit` per call, recording each call's limit. */
function table(rows: number) {
  const calls: number[] = [];
  return {
    calls,
    batch: async (now: string, limit: number) => {
      assert.equal(now, NOW.toISOString());
      calls.push(limit);
      const deleted = Math.min(rows, limit);
      rows -= deleted;
      return deleted;
    },
  };
}

describe('Pruner', () => {
  it('deletes a backlog in batches of PRUNE_BATCH_SIZE until a batch comes back short, table by table', async () => {
    const p = pruner(1000);
    const a = table(2500);
    const b = table(0);
    p.register('a', a.batch);
    p.register('b', b.batch);
    assert.deepEqual(await p.pruneOnce(), { a: 2500, b: 0 });
    assert.deepEqual(a.calls, [1000, 1000, 1000]);
    assert.deepEqual(b.calls, [1000]);
  });

  it('makes one more call when the backlog is an exact multiple of the batch', async () => {
    const p = pruner(500);
    const a = table(1000);
    p.register('a', a.batch);
    assert.deepEqual(await p.pruneOnce(), { a: 1000 });
    assert.deepEqual(a.calls, [500, 500, 500]);
  });

  it('never runs two passes at once: a second call joins the pass in flight', async () => {
    const p = pruner(10);
    let release!: () => void;
    let calls = 0;
    p.register('slow', async () => {
      calls++;
      await new Promise<void>((r) => (release = r));
      return 0;
    });
    const first = p.pruneOnce();
    const second = p.pruneOnce();
    await new Promise((r) => setImmediate(r));
    release();
    assert.deepEqual(await first, await second);
    assert.equal(calls, 1);
  });
});
