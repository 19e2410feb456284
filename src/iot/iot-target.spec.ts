import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from '../common/errors';
import { allocate, allocationTargets, checkAllocation } from './iot-target';

describe('IoT target allocation (docs/iot-targets.md)', () => {
  it('fixed: always its target; none: the default target', () => {
    assert.equal(allocate({ mode: 'fixed', targetId: 'eu' }, 'SN1', {}), 'eu');
    assert.equal(allocate(null, 'SN1', {}), 'default');
  });

  it('attribute: by the map, else the default, else refused', () => {
    const a = { mode: 'attribute' as const, attribute: 'region', map: { eu: 'eu-prod', us: 'us-prod' } };
    assert.equal(allocate(a, 'SN1', { region: 'eu' }), 'eu-prod');
    assert.equal(allocate(a, 'SN1', { region: 'us' }), 'us-prod');
    assert.equal(allocate({ ...a, default: 'us-prod' }, 'SN1', { region: 'mars' }), 'us-prod');
    assert.throws(() => allocate(a, 'SN1', { region: 'mars' }), (err: DomainError) => err.code === 'VALIDATION_FAILED');
    assert.throws(() => allocate(a, 'SN1', {}), (err: DomainError) => err.code === 'VALIDATION_FAILED');
  });

  it('weighted: deterministic per serial, and close to the weights over many serials', () => {
    const w = { mode: 'weighted' as const, weights: { b: 1, a: 3 } };
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 4000; i++) {
      const serial = `SN${i}`;
      const target = allocate(w, serial, {});
      assert.equal(allocate(w, serial, {}), target, 'the same serial lands in the same place');
      counts[target]++;
    }
    assert.ok(counts.a > 2700 && counts.a < 3300, JSON.stringify(counts));
    // The order the weights were written in does not matter.
    assert.equal(allocate({ mode: 'weighted', weights: { a: 3, b: 1 } }, 'SN42', {}), allocate(w, 'SN42', {}));
  });

  it('checks the shape and lists the targets named', () => {
    assert.throws(() => checkAllocation({ mode: 'round-robin' }), /mode/);
    assert.throws(() => checkAllocation({ mode: 'fixed', targetId: 'Bad Id' }), /targetId/);
    assert.throws(() => checkAllocation({ mode: 'weighted', weights: { a: 0 } }), /weights/);
    assert.throws(() => checkAllocation({ mode: 'attribute', attribute: 'region', map: {} }), /map/);
    checkAllocation({ mode: 'attribute', attribute: 'region', map: { eu: 'a', us: 'b' }, default: 'c' });
    assert.deepEqual(allocationTargets({ mode: 'attribute', attribute: 'region', map: { eu: 'a', us: 'b', ca: 'a' }, default: 'c' }), ['a', 'b', 'c']);
  });
});
