import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RevocationWatermarks } from './revocation-watermarks';

describe('RevocationWatermarks', () => {
  it('knows nothing until a counter is learnt, then the highest counter learnt', () => {
    const marks = new RevocationWatermarks();
    assert.equal(marks.current('ca'), undefined);
    marks.learn('ca', 3, marks.epoch('ca'));
    assert.equal(marks.current('ca'), 3);
    marks.learn('ca', 2, marks.epoch('ca'));
    assert.equal(marks.current('ca'), 3, 'counters only grow: an older read does not lower it');
    marks.learn('ca', 5, marks.epoch('ca'));
    assert.equal(marks.current('ca'), 5);
    assert.equal(marks.current('other'), undefined);
  });

  it('forgets the counter at a revocation of this process, and ignores reads that were in flight then', () => {
    const marks = new RevocationWatermarks();
    marks.learn('ca', 3, marks.epoch('ca'));
    const inFlight = marks.epoch('ca');
    const poll = marks.epochs();
    marks.revoked('ca');
    assert.equal(marks.current('ca'), undefined, 'no answer tagged 3 may be reused now');
    marks.learn('ca', 3, inFlight);
    marks.learn('ca', 3, poll.get('ca') ?? 0);
    assert.equal(marks.current('ca'), undefined, 'a read begun before the revocation does not vouch for it');
    marks.learn('ca', 4, marks.epoch('ca'));
    assert.equal(marks.current('ca'), 4);
  });

  it('keeps authorities apart, and takes reads of an authority first seen by a poll', () => {
    const marks = new RevocationWatermarks();
    const poll = marks.epochs();
    marks.revoked('a');
    marks.learn('a', 1, poll.get('a') ?? 0);
    marks.learn('b', 7, poll.get('b') ?? 0);
    assert.equal(marks.current('a'), undefined);
    assert.equal(marks.current('b'), 7);
  });
});
