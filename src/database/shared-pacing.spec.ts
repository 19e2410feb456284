import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SharedPacer } from './shared-pacing';

/** The database's side of a budget (shared-pacing.ts `reserve`), in memory: the next free slot, moved on by n intervals. */
function budget() {
  let nextSlot = 0;
  const state = {
    reservations: [] as number[],
    failNext: 0,
    reserve: async (n: number, intervalMs: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (state.failNext > 0) {
        state.failNext--;
        throw new Error('connection refused');
      }
      state.reservations.push(n);
      const now = performance.now();
      const first = Math.max(nextSlot, now);
      nextSlot = first + n * intervalMs;
      return first - now;
    },
  };
  return state;
}

describe('SharedPacer', () => {
  it('keeps pacers of one budget to its rate together, reserving for many callers at once while the budget is busy', async () => {
    const shared = budget();
    const RATE = 100;
    const pacers = [new SharedPacer(shared.reserve, RATE, 1), new SharedPacer(shared.reserve, RATE, 1)];
    const started = performance.now();
    const times: number[] = [];
    await Promise.all(pacers.flatMap((pacer) => Array.from({ length: 50 }, () => pacer.acquire().then(() => times.push(performance.now() - started)))));
    times.sort((a, b) => a - b);
    assert.ok(times[99] >= 99 * (1000 / RATE) - 2, `100 calls at ${RATE}/s done after ${times[99].toFixed(0)} ms`);
    assert.ok(shared.reservations.length < 20, `${shared.reservations.length} reservations for 100 calls`);
  });

  it('keeps its callers waiting while the database does not answer, and lets them go once it does', async () => {
    const shared = budget();
    shared.failNext = 1;
    const pacer = new SharedPacer(shared.reserve, 50, 1);
    const started = performance.now();
    await Promise.all([pacer.acquire(), pacer.acquire()]);
    assert.ok(performance.now() - started >= 450, 'waited for the retry');
    assert.deepEqual(shared.reservations, [2]);
  });
});
