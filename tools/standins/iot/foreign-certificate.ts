import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { signCertificate } from '../../../src/pki/certificate';
import { basicConstraints, extendedKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../../../src/pki/extensions';
import { buildName } from '../../../src/pki/names';
import { OID } from '../../../src/pki/oids';
import { randomSerial } from '../../../src/pki/serial';
import { subjectDer } from './der-reader';

/**
 * A device certificate naming `ca` as issuer but signed by a throwaway key, so that its signature does not verify
 * with the CA key: a forgery as far as a verifier can tell (see IotStandIn.registerForeignCertificate).
 */
export async function foreignCertificate(ca: X509Certificate, commonName: string): Promise<X509Certificate> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const now = Date.now();
  const notAfter = Math.min(now + 365 * 86_400_000, Date.parse(ca.validTo));
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuer: subjectDer(ca),
      subject: buildName({ commonName }),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(notAfter),
      extensions: [
        basicConstraints(false),
        keyUsage([KeyUsageFlags.digitalSignature]),
        extendedKeyUsage([OID.clientAuth]),
        subjectKeyIdentifier(keyIdentifier(spki)),
      ],
    },
    { algorithm: 'ECDSA_SHA_256', sign: async (data: Buffer) => sign('sha256', data, forger) },
  );
  return new X509Certificate(der);
}
