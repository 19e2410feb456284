import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { DomainError } from './errors';
import { allocate } from './allocation';

describe('allocation: inherited properties and locale (docs/iot-targets.md)', () => {
  it('an attribute value naming an Object.prototype property goes to the default target, not a function', () => {
    const a = { mode: 'attribute' as const, attribute: 'region', map: { eu: 'eu-prod' }, default: 'fallback' };
    for (const value of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      assert.equal(allocate(a, 'SN1', { region: value }), 'fallback', value);
    }
    // Without a default it is refused, like any unmapped value.
    assert.throws(() => allocate({ ...a, default: undefined }, 'SN1', { region: 'constructor' }), (err: DomainError) => err.code === 'VALIDATION_FAILED');
    // An attribute name naming a prototype property that the device does not have is "no attribute".
    assert.equal(allocate({ ...a, attribute: 'constructor' }, 'SN1', {}), 'fallback');
  });

  it('weighted order is by code unit, whatever the locale', () => {
    // localeCompare puts "b" before "C"; code units put "C" (0x43) first. Weights 1 each: the first id takes point 0.
    const w = { mode: 'weighted' as const, weights: { b: 1, C: 1 } };
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(allocate(w, `SN${i}`, {}));
    assert.deepEqual([...seen].sort(), ['C', 'b']);
    // Find a serial whose hash point is 0 (mod 2) and check it lands on "C", the first in code-unit order.
    const serial = [...Array(100).keys()].map((i) => `SN${i}`).find((s) => createHash('sha256').update(s).digest().readUInt32BE(0) % 2 === 0)!;
    assert.equal(allocate(w, serial, {}), 'C');
  });
});
