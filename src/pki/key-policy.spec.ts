import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { checkPublicKey, publicKeyFingerprint } from './key-policy';

describe('checkPublicKey: the key fingerprint computed once', () => {
  for (const namedCurve of ['P-256', 'P-384', 'P-521']) {
    it(`gives an EC ${namedCurve} key, from its point, the fingerprint its JWK gives`, () => {
      for (let i = 0; i < 20; i++) {
        // Twenty keys: some have coordinates with leading zero octets, which JWK keeps (fixed length).
        const { publicKey } = generateKeyPairSync('ec', { namedCurve });
        const spki = publicKey.export({ format: 'der', type: 'spki' });
        assert.equal(checkPublicKey(spki).sha256, publicKeyFingerprint(publicKey));
        assert.equal(checkPublicKey(spki).sha256, publicKeyFingerprint(spki));
      }
    });
  }

  it('gives an RSA key its JWK fingerprint', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    assert.equal(checkPublicKey(spki).sha256, publicKeyFingerprint(publicKey));
  });

  it('gives two different keys different fingerprints', () => {
    const spki = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    assert.notEqual(checkPublicKey(spki()).sha256, checkPublicKey(spki()).sha256);
  });
});

describe('checkPublicKey: the key parsed with stack capture off, and only for that call', () => {
  it('parses a good key and refuses a bad one as before, leaving Error.stackTraceLimit as it found it', () => {
    const limit = Error.stackTraceLimit;
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    assert.equal(checkPublicKey(spki).description, 'EC-P256');
    assert.equal(Error.stackTraceLimit, limit);
    const garbage = Buffer.concat([spki.subarray(0, 30), Buffer.alloc(spki.length - 30, 0xff)]);
    assert.throws(() => checkPublicKey(garbage), (err: Error & { code?: string }) => err.code === 'UNSUPPORTED_KEY' && /could not be parsed/.test(err.message));
    assert.equal(Error.stackTraceLimit, limit, 'restored after a key that fails to parse too');
    assert.ok((new Error('after').stack ?? '').includes('key-policy.spec'), 'errors made afterwards have their stacks');
  });
});
