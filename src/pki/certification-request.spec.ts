import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { caCertificationRequest, certificationRequestParts } from './certification-request';
import { pemEncode } from './der';
import { buildName } from './names';
import { digestOf, SigningAlgorithm } from './signing';

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());

const KEYS: [string, () => ReturnType<typeof generateKeyPairSync>, SigningAlgorithm][] = [
  ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ECDSA_SHA_256'],
  ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'ECDSA_SHA_384'],
  ['RSA 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RSASSA_PKCS1_V1_5_SHA_256'],
];

describe('caCertificationRequest (the CSR of an authority under an external root)', () => {
  for (const [name, generate, algorithm] of KEYS) {
    it(`is a PKCS#10 request openssl verifies, signed by a ${name} key, asking for a CA certificate`, async () => {
      const { publicKey, privateKey } = generate();
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const subject = buildName({ country: 'US', organization: 'Acme', commonName: 'Acme Issuing CA' });
      const der = await caCertificationRequest({
        subject,
        subjectPublicKeyInfo: spki,
        pathLength: 0,
        key: { algorithm, sign: async (data) => sign(digestOf(algorithm), data, privateKey) },
      });
      const checked = ssl.run(['req', '-in', ssl.file(`${algorithm}.csr`, pemEncode('CERTIFICATE REQUEST', der)), '-verify', '-noout', '-text']);
      assert.equal(checked.status, 0, checked.output);
      assert.match(checked.output, /verify OK/);
      assert.match(checked.output, /Subject: C\s?=\s?US, O\s?=\s?Acme, CN\s?=\s?Acme Issuing CA/);
      assert.match(checked.output, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      assert.match(checked.output, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
      const parts = certificationRequestParts(der);
      assert.deepEqual(parts.subject, subject);
      assert.deepEqual(parts.subjectPublicKeyInfo, spki);
    });
  }

  it('asks for no path length when none is given', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = await caCertificationRequest({
      subject: buildName({ commonName: 'Unbounded CA' }),
      subjectPublicKeyInfo: publicKey.export({ type: 'spki', format: 'der' }),
      pathLength: null,
      key: { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) },
    });
    const text = ssl.run(['req', '-in', ssl.file('unbounded.csr', pemEncode('CERTIFICATE REQUEST', der)), '-noout', '-text']).output;
    assert.match(text, /CA:TRUE\s*\n/);
    assert.doesNotMatch(text, /pathlen/);
  });
});
