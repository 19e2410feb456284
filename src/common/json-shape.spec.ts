import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from './errors';
import { checkJsonShape, checkQuery, MAX_JSON_DEPTH, MAX_JSON_VALUES } from './json-shape';

const nested = (depth: number, open = '[', close = ']') => JSON.parse(open.repeat(depth) + close.repeat(depth)) as unknown;
const nestedObject = (depth: number) => JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as unknown;

function refusal(value: unknown): { code: string; message: string; errors?: unknown } | undefined {
  const error = checkJsonShape(value);
  if (!error) return undefined;
  assert.ok(error instanceof DomainError);
  assert.equal(error.status, 400);
  return { code: error.code, message: error.message, errors: error.extra.errors };
}

describe('checkJsonShape', () => {
  it(`accepts arrays and objects nested ${MAX_JSON_DEPTH} levels, refuses ${MAX_JSON_DEPTH + 1}`, () => {
    assert.equal(refusal(nested(MAX_JSON_DEPTH)), undefined);
    assert.equal(refusal(nestedObject(MAX_JSON_DEPTH)), undefined);
    assert.equal(refusal(nested(MAX_JSON_DEPTH + 1))?.code, 'BODY_TOO_DEEP');
    assert.equal(refusal(nestedObject(MAX_JSON_DEPTH + 1))?.code, 'BODY_TOO_DEEP');
  });

  it('refuses a million levels without overflowing the stack (no recursion)', () => {
    assert.equal(refusal(nested(1_000_000))?.code, 'BODY_TOO_DEEP');
    const mixed = JSON.parse('{"x":['.repeat(750) + ']}'.repeat(750)) as unknown;
    assert.equal(refusal(mixed)?.code, 'BODY_TOO_DEEP', '1,500 levels of objects and arrays');
  });

  it(`refuses more than ${MAX_JSON_VALUES} values, counted at every depth`, () => {
    assert.equal(refusal(Array.from({ length: MAX_JSON_VALUES }, () => 0)), undefined);
    assert.equal(refusal(Array.from({ length: MAX_JSON_VALUES + 1 }, () => 0))?.code, 'BODY_TOO_WIDE');
    const wideObject = Object.fromEntries(Array.from({ length: MAX_JSON_VALUES + 1 }, (_, i) => [`k${i}`, i]));
    assert.equal(refusal(wideObject)?.code, 'BODY_TOO_WIDE');
    const spread = Array.from({ length: 101 }, () => Array.from({ length: 100 }, () => 0));
    assert.equal(refusal(spread)?.code, 'BODY_TOO_WIDE', '101 arrays of 100 items: 10,201 values');
  });

  it('counts an array or object before looking at any of its children (no list of them is built first)', () => {
    const touched = (): never => assert.fail('a child was read before the count was checked');
    const wideArray: unknown[] = new Array(MAX_JSON_VALUES + 1).fill(0);
    Object.defineProperty(wideArray, 0, { get: touched, enumerable: true });
    assert.equal(refusal(wideArray)?.code, 'BODY_TOO_WIDE');
    const wideObject: Record<string, unknown> = Object.fromEntries(Array.from({ length: MAX_JSON_VALUES + 1 }, (_, i) => [`k${i}`, i]));
    Object.defineProperty(wideObject, 'k0', { get: touched, enumerable: true });
    assert.equal(refusal(wideObject)?.code, 'BODY_TOO_WIDE');
    // Within the limit, every child is still checked.
    const narrow: unknown[] = [0, 'x'];
    Object.defineProperty(narrow, 1, { get: () => 'a\u0000b', enumerable: true });
    assert.equal(refusal(narrow)?.message, '1 must not contain NUL characters');
  });

  it('refuses a million-item array at once', () => {
    const items = JSON.parse(`[${'0,'.repeat(999_999)}0]`) as unknown;
    const started = performance.now();
    assert.equal(refusal(items)?.code, 'BODY_TOO_WIDE');
    // Listing the million items as [index, value] pairs first took some 100 ms and 90 MiB; the count is one addition.
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 50, `took ${elapsed.toFixed(1)} ms`);
  });

  for (const key of ['__proto__', 'constructor', 'prototype']) {
    it(`refuses a "${key}" key like an unknown field, at the top, nested, and inside arrays`, () => {
      assert.deepEqual(refusal(JSON.parse(`{"name":"x","${key}":{"isAdmin":true}}`)), {
        code: 'VALIDATION_FAILED',
        message: `property ${key} should not exist`,
        errors: [`property ${key} should not exist`],
      });
      assert.equal(refusal(JSON.parse(`{"subject":{"${key}":"x"}}`))?.message, `property subject.${key} should not exist`);
      assert.equal(refusal(JSON.parse(`{"items":[{"a":1},{"${key}":1}]}`))?.message, `property items.1.${key} should not exist`);
      assert.equal(refusal(JSON.parse(`[{"${key}":1}]`))?.message, `property 0.${key} should not exist`);
    });
  }

  it('accepts a prototype word as a value, and as part of a longer key', () => {
    assert.equal(refusal({ name: 'constructor', constructorName: 'x', items: ['__proto__', 'prototype'] }), undefined);
  });

  it('refuses a NUL character in any string or key, at any depth (PostgreSQL cannot store one)', () => {
    assert.equal(refusal({ selector: { profile: 'dev\u0000ice' } })?.message, 'selector.profile must not contain NUL characters');
    assert.equal(refusal({ list: ['a', 'b\u0000'] })?.message, 'list.1 must not contain NUL characters');
    assert.equal(refusal({ 'ke\u0000y': 1 })?.code, 'VALIDATION_FAILED');
    assert.equal(refusal('a\u0000')?.code, 'VALIDATION_FAILED');
    assert.equal(refusal({ text: 'no nul here \u0001' }), undefined);
  });

  it('passes primitives and null', () => {
    for (const value of [null, 1, 'x', true]) assert.equal(checkJsonShape(value), undefined);
  });
});

describe('checkQuery', () => {
  it('refuses a query string naming prototype machinery, or with a NUL in a value, and nothing else', () => {
    assert.equal(checkQuery(Object.assign(Object.create(null) as object, { constructor: '1' }))?.message, 'property constructor should not exist');
    assert.equal(checkQuery({ thingName: 'a\u0000b' })?.message, 'thingName must not contain NUL characters');
    assert.equal(checkQuery({ serial: ['a', 'b\u0000'] })?.message, 'serial must not contain NUL characters');
    assert.equal(checkQuery({ limit: '5', cursor: 'x', list: ['a', 'b'] }), undefined);
    assert.equal(checkQuery(undefined), undefined);
  });
});
