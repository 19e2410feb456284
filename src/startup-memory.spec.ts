import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as vm from 'node:vm';
import { describe, it } from 'node:test';
import { releaseStartupMemory } from './startup-memory';

describe('releaseStartupMemory', () => {
  it('runs a full collection at once: an object nothing references is gone when it returns', async () => {
    const ref = (() => new WeakRef({ payload: Buffer.alloc(1024) }))();
    // A WeakRef keeps its target for the rest of the turn that made it.
    await nextTurn();
    releaseStartupMemory();
    assert.equal(ref.deref(), undefined);
  });

  it('leaves no gc function behind, in this context or in contexts made later', () => {
    releaseStartupMemory();
    assert.equal((globalThis as { gc?: unknown }).gc, undefined);
    assert.equal(vm.runInNewContext('typeof gc'), 'undefined');
  });
});
