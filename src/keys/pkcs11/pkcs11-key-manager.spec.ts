import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError } from '../../common/errors';
import { KeySpec } from '../key-spec';
import { Pkcs11CallError } from './pkcs11-binding';
import { formatKeyRef, parseKeyRef, Pkcs11KeyManager } from './pkcs11-key-manager';
import { Pkcs11Token } from './pkcs11-token';

/**
 * A token that refuses the way HSMs do: either C_GetMechanismInfo says the spec is out of range, or C_GenerateKeyPair
 * answers with a CKR_ code. (The real module's paths are covered end to end against SoftHSM2 in test/e2e/pkcs11.e2e.ts;
 * SoftHSM2 supports every spec, so the refusals are shown here.)
 */
function refusingToken(refusal: { problem?: string; ckr?: string }): Pkcs11Token {
  return {
    label: 'fake-hsm',
    slotHandle: Buffer.alloc(8),
    lib: { keySpecProblem: (_slot: Buffer, _spec: KeySpec) => refusal.problem ?? null },
    withSession: async () => {
      throw new Pkcs11CallError(refusal.ckr ?? 'CKR_GENERAL_ERROR', 'C_GenerateKeyPair');
    },
  } as unknown as Pkcs11Token;
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; status: number; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DomainError, String(err));
    return { code: err.code, status: err.status, message: err.message };
  }
  assert.fail('expected a refusal');
}

describe('pkcs11 key manager', () => {
  it('answers 422 KEY_SPEC_NOT_SUPPORTED when the token lacks the mechanism or key size, before generating', async () => {
    const manager = new Pkcs11KeyManager(refusingToken({ problem: 'the token makes RSA keys of 1024–2048 bits only' }), () => undefined);
    const refused = await codeOf(manager.createKey({ spec: 'RSA_4096', authorityId: 'a', label: 'x' }));
    assert.equal(refused.code, 'KEY_SPEC_NOT_SUPPORTED');
    assert.equal(refused.status, 422);
    assert.match(refused.message, /token "fake-hsm" cannot make RSA_4096 keys: the token makes RSA keys of 1024–2048 bits only/);
  });

  for (const ckr of ['CKR_MECHANISM_INVALID', 'CKR_KEY_SIZE_RANGE', 'CKR_CURVE_NOT_SUPPORTED', 'CKR_TEMPLATE_INCONSISTENT']) {
    it(`answers 422 KEY_SPEC_NOT_SUPPORTED when C_GenerateKeyPair answers ${ckr}`, async () => {
      const manager = new Pkcs11KeyManager(refusingToken({ ckr }), () => undefined);
      const refused = await codeOf(manager.createKey({ spec: 'EC_P384', authorityId: 'a', label: 'x' }));
      assert.equal(refused.code, 'KEY_SPEC_NOT_SUPPORTED');
      assert.match(refused.message, new RegExp(`refused to make a EC_P384 key \\(${ckr}\\)`));
    });
  }

  it('answers 503 KEY_BACKEND_UNAVAILABLE for a token failure that is not about the spec', async () => {
    const manager = new Pkcs11KeyManager(refusingToken({ ckr: 'CKR_DEVICE_MEMORY' }), () => undefined);
    const refused = await codeOf(manager.createKey({ spec: 'EC_P256', authorityId: 'a', label: 'x' }));
    assert.equal(refused.code, 'KEY_BACKEND_UNAVAILABLE');
    assert.equal(refused.status, 503);
  });

  it('keeps the token label and CKA_ID in the key reference, and refuses one that is not a PKCS #11 reference', () => {
    const ref = formatKeyRef({ token: 'ca;token/1', id: Buffer.from('0a0b', 'hex') });
    assert.equal(ref, 'pkcs11:token=ca%3Btoken%2F1;id=0a0b');
    assert.deepEqual(parseKeyRef(ref), { token: 'ca;token/1', id: Buffer.from('0a0b', 'hex') });
    assert.throws(() => parseKeyRef('arn:aws:kms:…'), /not a PKCS #11 key reference/);
  });
});
