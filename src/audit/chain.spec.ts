import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuditEventContent, canonicalJson, chainHash, GENESIS_HASH } from './chain';

const event: AuditEventContent = {
  seq: 12,
  occurredAt: '2025-01-02T03:04:05.678Z',
  actorType: 'api-key',
  actorId: 'key-1',
  actorRole: 'operator',
  action: 'certificate.revoked',
  targetType: 'certificate',
  targetId: 'c0ffee',
  requestId: 'req-1',
  sourceIp: '192.0.2.1',
  details: { reason: 'keyCompromise', serial: '7f01', nested: { b: 2, a: [1, { d: 4, c: 3 }] } },
};

const PREV = 'a'.repeat(64);

describe('canonicalJson', () => {
  const cases: { name: string; value: unknown; expected: string }[] = [
    { name: 'sorts top-level keys', value: { b: 1, a: 2, c: 3 }, expected: '{"a":2,"b":1,"c":3}' },
    { name: 'sorts keys of nested objects', value: { z: { y: 1, x: { w: 1, v: 2 } } }, expected: '{"z":{"x":{"v":2,"w":1},"y":1}}' },
    { name: 'sorts keys of objects inside arrays, keeping array order', value: [{ b: 1, a: 2 }, 3, { d: 1, c: 2 }], expected: '[{"a":2,"b":1},3,{"c":2,"d":1}]' },
    { name: 'drops undefined values at every level', value: { a: undefined, b: { c: undefined, d: 1 } }, expected: '{"b":{"d":1}}' },
    { name: 'keeps null values', value: { a: null }, expected: '{"a":null}' },
    { name: 'writes undefined inside an array as null, like JSON.stringify', value: [1, undefined, 2], expected: '[1,null,2]' },
    { name: 'writes a bare undefined as null', value: undefined, expected: 'null' },
    { name: 'escapes strings as JSON does', value: { 'k"ey': 'line\nbreak "quoted" \u0000' }, expected: '{"k\\"ey":"line\\nbreak \\"quoted\\" \\u0000"}' },
    { name: 'writes empty objects and arrays', value: { a: {}, b: [] }, expected: '{"a":{},"b":[]}' },
    { name: 'writes numbers and booleans as JSON', value: { n: 1.5, t: true, f: false, z: 0 }, expected: '{"f":false,"n":1.5,"t":true,"z":0}' },
    { name: 'sorts keys by code unit (upper case before lower case)', value: { b: 1, B: 2, a: 3, _: 4 }, expected: '{"B":2,"_":4,"a":3,"b":1}' },
  ];
  for (const { name, value, expected } of cases) {
    it(name, () => assert.equal(canonicalJson(value), expected));
  }

  it('is valid JSON that parses back to the same value', () => {
    assert.deepEqual(JSON.parse(canonicalJson(event)), event);
  });

  it('gives the same text whatever the key insertion order', () => {
    const reordered = {
      details: { nested: { a: [1, { c: 3, d: 4 }], b: 2 }, serial: '7f01', reason: 'keyCompromise' },
      sourceIp: '192.0.2.1',
      requestId: 'req-1',
      targetId: 'c0ffee',
      targetType: 'certificate',
      action: 'certificate.revoked',
      actorRole: 'operator',
      actorId: 'key-1',
      actorType: 'api-key',
      occurredAt: '2025-01-02T03:04:05.678Z',
      seq: 12,
    };
    assert.equal(canonicalJson(reordered), canonicalJson(event));
  });
});

describe('chainHash', () => {
  it('is SHA-256 over previous hash, a newline and the canonical JSON, in lowercase hex', () => {
    const expected = createHash('sha256').update(`${PREV}\n${canonicalJson(event)}`).digest('hex');
    assert.equal(chainHash(PREV, event), expected);
    assert.match(chainHash(PREV, event), /^[0-9a-f]{64}$/);
  });

  it('starts chains from a genesis hash of 64 zeros', () => {
    assert.equal(GENESIS_HASH, '0'.repeat(64));
    assert.notEqual(chainHash(GENESIS_HASH, event), chainHash(PREV, event));
  });

  it('changes when the previous hash changes', () => {
    assert.notEqual(chainHash(PREV, event), chainHash('b'.repeat(64), event));
    assert.notEqual(chainHash(PREV, event), chainHash(PREV.slice(0, 63) + 'b', event));
  });

  const changes: [string, Partial<AuditEventContent>][] = [
    ['seq', { seq: 13 }],
    ['occurredAt', { occurredAt: '2025-01-02T03:04:05.679Z' }],
    ['actorType', { actorType: 'system' }],
    ['actorId (to null)', { actorId: null }],
    ['actorRole', { actorRole: 'admin' }],
    ['action', { action: 'certificate.issued' }],
    ['targetType (to null)', { targetType: null }],
    ['targetId', { targetId: 'c0ffef' }],
    ['requestId (to null)', { requestId: null }],
    ['sourceIp', { sourceIp: '192.0.2.2' }],
    ['details (a top-level value)', { details: { ...event.details, reason: 'superseded' } }],
    ['details (a deeply nested value)', { details: { ...event.details, nested: { b: 2, a: [1, { d: 4, c: 4 }] } } }],
    ['details (an added key)', { details: { ...event.details, extra: true } }],
    ['details (a removed key)', { details: { reason: 'keyCompromise', nested: event.details.nested } }],
    ['details (a number turned into a string)', { details: { ...event.details, nested: { b: '2', a: [1, { d: 4, c: 3 }] } } }],
    ['details (array order)', { details: { ...event.details, nested: { b: 2, a: [{ d: 4, c: 3 }, 1] } } }],
  ];
  for (const [field, change] of changes) {
    it(`changes when ${field} changes`, () => {
      assert.notEqual(chainHash(PREV, { ...event, ...change }), chainHash(PREV, event));
    });
  }

  it('distinguishes a null field from an empty string', () => {
    assert.notEqual(chainHash(PREV, { ...event, actorId: null }), chainHash(PREV, { ...event, actorId: '' }));
  });

  it('is stable across key order, and across a JSON round trip (what the database gives back)', () => {
    const shuffled = Object.fromEntries(Object.entries(event).reverse()) as unknown as AuditEventContent;
    assert.equal(chainHash(PREV, shuffled), chainHash(PREV, event));
    const stored = JSON.parse(JSON.stringify(event)) as AuditEventContent;
    assert.equal(chainHash(PREV, stored), chainHash(PREV, event));
  });

  it('ignores undefined details values, which JSON storage drops anyway', () => {
    const withUndefined = { ...event, details: { ...event.details, note: undefined } };
    assert.equal(chainHash(PREV, withUndefined), chainHash(PREV, event));
  });
});
