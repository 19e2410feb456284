import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stackless } from './stackless';

describe('stackless: stack capture off for one synchronous call', () => {
  it('answers what the work answers, its errors carry no stack, and the limit is restored after either', () => {
    const limit = Error.stackTraceLimit;
    assert.equal(stackless(() => Error.stackTraceLimit), 0);
    assert.equal(Error.stackTraceLimit, limit);
    let thrown: Error | undefined;
    try {
      stackless(() => {
        throw new Error('inside');
      });
    } catch (err) {
      thrown = err as Error;
    }
    assert.equal(thrown?.message, 'inside');
    assert.ok(!(thrown?.stack ?? '').includes('stackless.spec'), 'no frames captured inside');
    assert.equal(Error.stackTraceLimit, limit, 'restored after the work threw');
    assert.ok((new Error('after').stack ?? '').includes('stackless.spec'), 'errors made afterwards have their stacks');
  });
});
