import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { HOSTILE_SERIAL_PATTERNS } from '../../test/support/hostile-patterns';
import { DomainError } from '../common/errors';
import { compileSerialPattern, storedSerialPattern, UNUSABLE_SERIAL_PATTERN } from './serial-pattern';
import { DEVICE_SERIAL_PATTERN } from './serial-list';

/** The budget for one match: far below what a backtracking RegExp needs for any of these (seconds to centuries). */
const MATCH_BUDGET_MS = 50;

function refusal(pattern: string): DomainError {
  try {
    compileSerialPattern(pattern);
  } catch (err) {
    assert.ok(err instanceof DomainError, String(err));
    return err;
  }
  assert.fail(`pattern ${JSON.stringify(pattern)} was accepted`);
}

describe('compileSerialPattern', () => {
  it('answers every hostile pattern on a matching and a non-matching 64-character serial within 50 ms', (t) => {
    compileSerialPattern('warm-up[0-9]+').matchesWhole('warm-up1'); // loads the engine once, as any first exchange does
    let worst = { ms: 0, what: '' };
    let worstCompile = 0;
    for (const { pattern, matching, nonMatching } of HOSTILE_SERIAL_PATTERNS) {
      let started = performance.now();
      const compiled = compileSerialPattern(pattern);
      worstCompile = Math.max(worstCompile, performance.now() - started);
      for (const [serial, expected] of [[nonMatching, false], [matching, true]] as const) {
        assert.match(serial, DEVICE_SERIAL_PATTERN, 'the fixture is a well-formed device serial');
        assert.equal(serial.length, 64);
        started = performance.now();
        const matched = compiled.matchesWhole(serial);
        const ms = performance.now() - started;
        assert.equal(matched, expected, `${pattern} on ${serial}`);
        assert.ok(ms < MATCH_BUDGET_MS, `${pattern} on ${serial} took ${ms.toFixed(1)} ms`);
        if (ms > worst.ms) worst = { ms, what: `${pattern} on ${serial}` };
      }
    }
    assert.ok(worstCompile < MATCH_BUDGET_MS, `compiling took up to ${worstCompile.toFixed(1)} ms`);
    t.diagnostic(`worst match: ${worst.ms.toFixed(2)} ms (${worst.what}); worst compile: ${worstCompile.toFixed(2)} ms`);
  });

  it('matches the whole serial, as the RegExp it replaces did, for the patterns in use', () => {
    const cases: [string, string, boolean][] = [
      ['SN[0-9]{4}', 'SN0001', true],
      ['SN[0-9]{4}', 'SN00012', false],
      ['SN[0-9]{4}', 'xSN0001', false],
      ['SN[0-9]{8}', 'SN12345678', true],
      ['SN1|SN2', 'SN1', true],
      ['SN1|SN2', 'SN1x', false, ],
      ['SN1|SN2', 'xSN2', false],
      ['^SN\\d+$', 'SN42', true],
      ['[A-F0-9]{12}', 'A1B2C3D4E5F6', true],
      ['[A-F0-9]{12}', 'a1b2c3d4e5f6', false],
      ['(?i)[a-f0-9]{12}', 'A1B2C3D4E5F6', true],
      ['\\p{Lu}{2}-\\d+', 'AB-7', true],
      ['(?<line>L[0-9])/\\d+', 'L1/99', true],
      ['acme\\.[a-z]+:\\d+', 'acme.x:1', true],
      ['acme\\.[a-z]+:\\d+', 'acmeXx:1', false],
    ];
    for (const [pattern, serial, expected] of cases) {
      assert.equal(compileSerialPattern(pattern).matchesWhole(serial), expected, `${pattern} on ${serial}`);
      assert.equal(new RegExp(`^(?:${pattern.replace('(?i)', '')})$`, pattern.startsWith('(?i)') ? 'iu' : 'u').test(serial), expected, `RegExp agrees: ${pattern} on ${serial}`);
    }
  });

  it('refuses what RE2 cannot match in linear time or cannot parse, saying why (422 INVALID_CLAIM)', () => {
    const cases: [string, RegExp][] = [
      ['(?=SN)SN\\d+', /unsupported Perl syntax: `\(\?=`/],
      ['(?!X)\\w+', /unsupported Perl syntax: `\(\?!`/],
      ['(?<=S)N\\d+', /RE2/],
      ['(a)\\1', /invalid escape sequence: `\\1`/],
      ['(?<n>a)\\k<n>', /invalid escape sequence: `\\k`/],
      ['[', /missing closing \]/],
      ['a)|(b', /unexpected \)/],
      ['a{1001}', /invalid repeat count/],
      ['((a{100}){100}){100}', /invalid repeat count/],
      ['a++', /nested repetition/],
    ];
    for (const [pattern, message] of cases) {
      const err = refusal(pattern);
      assert.equal(err.code, 'INVALID_CLAIM', pattern);
      assert.equal(err.status, 422);
      assert.match(err.message, /^serialPattern is not a valid RE2 regular expression/, pattern);
      assert.match(err.message, message, pattern);
    }
  });

  it('refuses a pattern whose RE2 program is over 500 instructions, which would make each match slow', () => {
    for (const pattern of ['(\\w?){126}', '\\p{L}{1000}', `${'\\p{L}{64}'.repeat(16)}`]) {
      const err = refusal(pattern);
      assert.equal(err.code, 'INVALID_CLAIM');
      assert.match(err.message, /^serialPattern is too complex: its RE2 program has \d+ instructions, at most 500 are allowed/, pattern);
    }
    assert.ok(compileSerialPattern('(\\w?){124}'));
    assert.ok(compileSerialPattern('[A-Z0-9]{64}'));
  });

  it('keeps the length bound: 256 characters at most, and not empty', () => {
    assert.ok(compileSerialPattern(`SN${'[0-9]'.repeat(50)}${'x'.repeat(4)}`).matchesWhole(`SN${'7'.repeat(50)}xxxx`));
    assert.match(refusal('A'.repeat(257)).message, /at most 256 characters/);
    assert.match(refusal('').message, /must not be empty/);
  });

  it('answers a stored pattern RE2 refuses with a generic message, logs the detail once and caches the refusal', () => {
    const logged: string[] = [];
    const stored = '(?=UNUSABLE)SN[0-9]+'; // lookahead: refused by RE2, storable only before the upgrade or by hand
    const refusals: DomainError[] = [];
    for (let i = 0; i < 3; i++) {
      assert.throws(
        () => storedSerialPattern(stored, 'claim-1', (message) => logged.push(message)),
        (err: unknown) => {
          assert.ok(err instanceof DomainError);
          assert.equal(err.code, 'INVALID_CLAIM');
          assert.equal(err.message, UNUSABLE_SERIAL_PATTERN);
          return true;
        },
      );
      refusals.push(refusal(stored));
    }
    // The parser's detail goes to the log, once; the cached refusal is the same one each time (compiled once).
    assert.equal(logged.length, 1);
    assert.match(logged[0], /claim-1.*not a valid RE2 regular expression/);
    assert.equal(refusals[0], refusals[1]);
    assert.equal(refusals[1], refusals[2]);
    // A usable stored pattern is answered as before.
    assert.equal(storedSerialPattern('SN[0-9]+', 'claim-2', (message) => logged.push(message)).matchesWhole('SN12'), true);
    assert.equal(logged.length, 1);
  });
});
