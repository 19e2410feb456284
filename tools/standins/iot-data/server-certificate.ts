import { webcrypto } from 'node:crypto';
import { cryptoProvider, ExtendedKeyUsageExtension, SubjectAlternativeNameExtension, X509CertificateGenerator } from '../../../src/pki/x509-library';

/** A self-signed P-256 server certificate for the stand-in's TLS listener, naming `serverName`, localhost and 127.0.0.1. */
export async function selfSignedServerCertificate(serverName: string): Promise<{ certPem: string; keyPem: string }> {
  cryptoProvider.set(webcrypto as unknown as Parameters<typeof cryptoProvider.set>[0]);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const certificate = await X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${serverName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 7 * 86_400_000),
    signingAlgorithm: algorithm,
    keys: keys as unknown as Parameters<typeof X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new SubjectAlternativeNameExtension([
        { type: 'dns', value: serverName },
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
      new ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1']),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return { certPem: certificate.toString('pem'), keyPem };
}
