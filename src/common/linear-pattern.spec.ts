import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { compileLinearPattern, globMatches, PatternSyntaxError, PatternTooComplexError } from './linear-pattern';

describe('compileLinearPattern', () => {
  it('anchors at both ends whatever the pattern holds', () => {
    const pattern = compileLinearPattern('SN1|SN2');
    assert.equal(pattern.matchesWhole('SN2'), true);
    assert.equal(pattern.matchesWhole('SN2x'), false);
    assert.equal(pattern.matchesWhole('xSN1'), false);
    assert.throws(() => compileLinearPattern('SN1)|(.*'), PatternSyntaxError);
  });

  it('refuses a program over maxProgramSize, naming its size', () => {
    assert.throws(() => compileLinearPattern('[A-Z]{100}', { maxProgramSize: 50 }), (err: unknown) => err instanceof PatternTooComplexError && /has 102 instructions, at most 50/.test(err.message));
    assert.ok(compileLinearPattern('[A-Z]{40}', { maxProgramSize: 50 }).matchesWhole('A'.repeat(40)));
  });

  it('stays linear where RegExp is exponential: (a|aa)+ on 10,000 characters', () => {
    const pattern = compileLinearPattern('(a|aa)+');
    const started = performance.now();
    assert.equal(pattern.matchesWhole(`${'a'.repeat(10_000)}b`), false);
    assert.ok(performance.now() - started < 500);
  });
});

describe('globMatches', () => {
  it('matches * (any run) and ? (one character), everything else literally', () => {
    const cases: [string, string, boolean][] = [
      ['*', '', true],
      ['*', 'iot:publish', true],
      ['iot:*', 'iot:publish', true],
      ['iot:*', 'iotx:publish', false],
      ['iot:pub*', 'iot:publish', true],
      ['iot:*sh', 'iot:publish', true],
      ['iot:*sh', 'iot:publishx', false],
      ['iot:?ublish', 'iot:publish', true],
      ['iot:?ublish', 'iot:ublish', false],
      ['iot:*e*e*', 'iot:retainpublish', false],
      ['iot:*a*i*', 'iot:retainpublish', true],
      ['iot:connect', 'iot:connect', true],
      ['iot:connect', 'iot:connec', false],
      ['iot:connec', 'iot:connect', false],
      ['i.t:*', 'iot:connect', false],
      ['**?', '', false],
      ['**?', 'x', true],
    ];
    for (const [glob, value, expected] of cases) assert.equal(globMatches(glob, value), expected, `${glob} on ${value}`);
  });

  it('answers a glob of 2,000 stars that cannot match at once (a RegExp of .*.*… takes minutes)', () => {
    const started = performance.now();
    assert.equal(globMatches(`iot:${'*'.repeat(2000)}x`, 'iot:retainpublish'), false);
    assert.equal(globMatches(`${'*a'.repeat(1000)}`, 'a'.repeat(999)), false);
    assert.ok(performance.now() - started < 200);
  });
});
