import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expiryBuckets } from './typeorm-certificate.repository';

describe('expiryBuckets (the expiry search)', () => {
  it('names every 10-day bucket (the first 9 characters of an ISO time) from the first time to the last', () => {
    assert.deepEqual(expiryBuckets('2026-06-15T12:00:00.000Z', '2026-06-15T13:00:00.000Z'), ['2026-06-1']);
    assert.deepEqual(expiryBuckets('2026-06-09T23:59:59.999Z', '2026-06-10T00:00:00.000Z'), ['2026-06-0', '2026-06-1']);
    assert.deepEqual(expiryBuckets('2026-11-25T00:00:00.000Z', '2027-01-05T00:00:00.000Z'), ['2026-11-2', '2026-11-3', '2026-12-0', '2026-12-1', '2026-12-2', '2026-12-3', '2027-01-0']);
  });

  it('is empty when the range is, and null when it spans more than ~8 years or is not a 4-digit-year time', () => {
    assert.deepEqual(expiryBuckets('2026-06-15T00:00:00.000Z', '2026-05-01T00:00:00.000Z'), []);
    assert.equal(expiryBuckets('2026-01-01T00:00:00.000Z', '2040-01-01T00:00:00.000Z'), null);
    assert.equal(expiryBuckets('2026-01-01T00:00:00.000Z', '+012026-01-01T00:00:00.000Z'), null);
    assert.equal(expiryBuckets('2026-01-01T00:00:00.000Z', '2033-12-31T00:00:00.000Z')?.length, 8 * 48);
  });
});
