import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from './rate-limiter';

describe('RateLimiter', () => {
  it('lets a burst through at once, then paces callers to the rate', async () => {
    const limiter = new RateLimiter(100, 5);
    const started = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => limiter.acquire()));
    assert.ok(performance.now() - started < 20, 'the burst is immediate');
    await Promise.all(Array.from({ length: 20 }, () => limiter.acquire()));
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 180, `20 more at 100/s take about 200 ms (took ${elapsed.toFixed(0)} ms)`);
    assert.ok(elapsed < 400, `but not much longer (took ${elapsed.toFixed(0)} ms)`);
  });

  it('serves callers in arrival order', async () => {
    const limiter = new RateLimiter(200, 1);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 6 }, (_, i) => limiter.acquire().then(() => order.push(i))));
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  });
});
