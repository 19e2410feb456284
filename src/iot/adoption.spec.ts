import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { signCertificate } from '../pki/certificate';
import { pemEncode } from '../pki/der';
import { basicConstraints } from '../pki/extensions';
import { buildName } from '../pki/names';
import { randomSerial } from '../pki/serial';
import { isSameCertificate } from './adoption';

async function selfSigned(commonName: string): Promise<Buffer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = buildName({ commonName });
  return signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      subjectPublicKeyInfo: publicKey.export({ type: 'spki', format: 'der' }),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      extensions: [basicConstraints(true)],
    },
    { algorithm: 'ECDSA_SHA_256', sign: async (data: Buffer) => sign('sha256', data, privateKey) },
  );
}

describe('adoption: is the certificate AWS IoT describes ours?', () => {
  it('is ours only when the DER is byte for byte the same, whatever the PEM line breaks', async () => {
    const ours = await selfSigned('Ours');
    const theirs = await selfSigned('Ours'); // same subject, another key: not ours
    const pem = pemEncode('CERTIFICATE', ours);
    assert.equal(isSameCertificate(pem, ours), true);
    assert.equal(isSameCertificate(new X509Certificate(ours).toString().replace(/\n/g, '\r\n'), ours), true);
    assert.equal(isSameCertificate(pemEncode('CERTIFICATE', theirs), ours), false);
    assert.equal(isSameCertificate('', ours), false);
    assert.equal(isSameCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', ours), false);
  });
});
