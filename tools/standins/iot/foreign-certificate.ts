import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { signCertificate } from '../../../src/pki/certificate';
import { keyIdentifier } from '../../../src/pki/extensions';
import { describeCertificate } from '../../../src/pki/issuance';
import { findProfile } from '../../../src/pki/profiles';
import { randomSerial } from '../../../src/pki/serial';
import { subjectDer } from './der-reader';

/**
 * A device certificate naming `ca` as issuer but signed by a throwaway key, so that its signature does not verify
 * with the CA key: a forgery as far as a verifier can tell (see IotStandIn.registerForeignCertificate). Its contents
 * are what the service would put in a device certificate (src/pki/issuance.ts); only the signature is wrong.
 */
export async function foreignCertificate(ca: X509Certificate, commonName: string): Promise<X509Certificate> {
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const caSpki = ca.publicKey.export({ type: 'spki', format: 'der' });
  const { tbs } = describeCertificate({
    kind: 'end-entity',
    issuer: { name: subjectDer(ca), keyId: keyIdentifier(caSpki), notBefore: new Date(ca.validFrom), notAfter: new Date(ca.validTo) },
    urls: { crl: 'http://standin.invalid/crl', caCertificate: 'http://standin.invalid/ca', ocsp: 'http://standin.invalid/ocsp' },
    profile: findProfile('device'),
    names: { subject: { commonName }, dnsNames: [], ipAddresses: [], thingName: commonName },
    validityDays: 365,
    subjectPublicKeyInfo: spki,
    now: new Date(),
    backdateSeconds: 3600,
  });
  const der = await signCertificate({ serial: randomSerial(), ...tbs }, { algorithm: 'ECDSA_SHA_256', sign: async (data: Buffer) => sign('sha256', data, forger) });
  return new X509Certificate(der);
}
