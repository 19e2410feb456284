import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRateLimitSetting, RateLimitTable, sourceKey, takeAll } from './request-rate-limits';

describe('parseRateLimitSetting', () => {
  it('reads a count per second, minute or hour, and 0/off as no limit', () => {
    assert.deepEqual(parseRateLimitSetting('600/min'), { limit: 600, windowSeconds: 60 });
    assert.deepEqual(parseRateLimitSetting('20/s'), { limit: 20, windowSeconds: 1 });
    assert.deepEqual(parseRateLimitSetting(' 10000 / hour '), { limit: 10000, windowSeconds: 3600 });
    assert.equal(parseRateLimitSetting('0'), null);
    assert.equal(parseRateLimitSetting('OFF'), null);
  });

  for (const bad of ['600', '600/day', '0/min', '-1/min', 'x/min', '1e3/min', '']) {
    it(`refuses "${bad}"`, () => assert.throws(() => parseRateLimitSetting(bad), /must look like "600\/min"/));
  }
});

describe('RateLimitTable and takeAll', () => {
  it('lets the limit through at once, refuses the next with the seconds until a token, and refills at the rate', () => {
    const table = new RateLimitTable('api-key', { limit: 3, windowSeconds: 60 });
    for (let i = 0; i < 3; i++) assert.deepEqual(takeAll([[table, 'k']], 0), { ok: true });
    assert.deepEqual(takeAll([[table, 'k']], 0), { ok: false, dimension: 'api-key', retryAfterSeconds: 20 });
    assert.deepEqual(takeAll([[table, 'k']], 15_000), { ok: false, dimension: 'api-key', retryAfterSeconds: 5 });
    assert.deepEqual(takeAll([[table, 'k']], 20_000), { ok: true });
    assert.deepEqual(takeAll([[table, 'other']], 20_000), { ok: true }, 'each key has its own bucket');
  });

  it('says at least one second, never 0', () => {
    const table = new RateLimitTable('source', { limit: 100, windowSeconds: 1 });
    for (let i = 0; i < 100; i++) takeAll([[table, 'a']], 0);
    assert.deepEqual(takeAll([[table, 'a']], 0), { ok: false, dimension: 'source', retryAfterSeconds: 1 });
  });

  it('takes from every table or from none: a station over its own limit spends nothing of its claim', () => {
    const claim = new RateLimitTable('claim', { limit: 3, windowSeconds: 60 });
    const station = new RateLimitTable('station', { limit: 2, windowSeconds: 60 });
    const results = Array.from({ length: 10 }, () => takeAll([[station, 'greedy'], [claim, 'c1']], 0).ok);
    assert.deepEqual(results, [true, true, false, false, false, false, false, false, false, false]);
    assert.equal(takeAll([[station, 'polite'], [claim, 'c1']], 0).ok, true, 'another station of the claim still gets through');
    assert.equal(takeAll([[station, 'third'], [claim, 'c1']], 0).ok, false, 'until the claim is spent');
  });

  it('names the dimension that waits longest, and skips tables that are off', () => {
    const a = new RateLimitTable('a', { limit: 1, windowSeconds: 10 });
    const b = new RateLimitTable('b', { limit: 1, windowSeconds: 100 });
    takeAll([[a, 'x'], [b, 'x'], [null, 'x']], 0);
    assert.deepEqual(takeAll([[a, 'x'], [b, 'x']], 0), { ok: false, dimension: 'b', retryAfterSeconds: 100 });
  });

  it('keeps at most its bound of keys, forgetting full buckets first', () => {
    const table = new RateLimitTable('source', { limit: 1, windowSeconds: 1 }, 100);
    for (let i = 0; i < 1000; i++) takeAll([[table, `k${i}`]], i * 10);
    assert.ok(table.size <= 100, String(table.size));
    assert.equal(takeAll([[table, 'k999']], 9990).ok, false, 'the newest keys are remembered');
  });
});

describe('sourceKey', () => {
  it('keeps IPv4 addresses, maps IPv4-mapped IPv6 to IPv4, and groups IPv6 by /64', () => {
    assert.equal(sourceKey('203.0.113.7'), '203.0.113.7');
    assert.equal(sourceKey('::ffff:203.0.113.7'), '203.0.113.7');
    assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey(undefined), '-');
  });
});
