import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestInSlices, HASH_SLICE_BYTES, signInSlices } from './large-input';

/** Counts turns of the event loop (setImmediate callbacks) while `work` runs. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    return { value: await work(), turns };
  } finally {
    running = false;
  }
}

describe('large inputs hashed in slices (docs/architecture.md "CRLs")', () => {
  const large = Buffer.alloc(HASH_SLICE_BYTES * 4 + 123);
  for (let i = 0; i < large.length; i += 997) large[i] = i & 0xff;

  it('gives the digest of the whole input, with turns of the event loop between slices', async () => {
    for (const algorithm of ['sha256', 'sha384'] as const) {
      const { value, turns } = await turnsDuring(() => digestInSlices(algorithm, large));
      assert.deepEqual(value, createHash(algorithm).update(large).digest());
      assert.ok(turns >= 4, `the event loop ran ${turns} times while 5 slices were hashed`);
    }
    assert.deepEqual(await digestInSlices('sha256', Buffer.from('small')), createHash('sha256').update('small').digest());
  });

  it('signs the whole input (ECDSA and RSA), verifiable as one signature, with turns of the event loop between slices', async () => {
    const keys = [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('rsa', { modulusLength: 2048 })];
    for (const { privateKey, publicKey } of keys) {
      const { value, turns } = await turnsDuring(() => signInSlices('sha256', large, privateKey));
      assert.ok(verify('sha256', large, publicKey, value), `${privateKey.asymmetricKeyType} signature verifies`);
      assert.ok(turns >= 4, `the event loop ran ${turns} times while 5 slices were signed`);
    }
  });
});
