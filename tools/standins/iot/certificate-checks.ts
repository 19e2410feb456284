import { createHash, KeyObject, X509Certificate } from 'node:crypto';
import { signatureAlgorithmOid } from './der-reader';
import { certificateValidation } from './iot-api';

// What AWS IoT checks on the certificates it is given, read with node's X509Certificate and the stand-in's own DER
// reader (der-reader.ts), never with the service's code.

/** DER of the signature AlgorithmIdentifier OIDs AWS IoT accepts on device certificates (SHA-2 with RSA, RSA-PSS or ECDSA). */
const ACCEPTED_SIGNATURE_OIDS: Record<string, string> = {
  '06092a864886f70d01010b': 'sha256WithRSAEncryption',
  '06092a864886f70d01010c': 'sha384WithRSAEncryption',
  '06092a864886f70d01010d': 'sha512WithRSAEncryption',
  '06092a864886f70d01010a': 'RSASSA-PSS',
  '06082a8648ce3d040302': 'ecdsa-with-SHA256',
  '06082a8648ce3d040303': 'ecdsa-with-SHA384',
  '06082a8648ce3d040304': 'ecdsa-with-SHA512',
};

const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** The AWS IoT certificate id: SHA-256 of the DER, lowercase hex. */
export function idOf(x509: X509Certificate): string {
  return createHash('sha256').update(x509.raw).digest('hex');
}

export function parseCertificate(pem: string, field: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw certificateValidation(`${field} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch {
    throw certificateValidation(`${field} is not a valid certificate`);
  }
}

export function validAt(x509: X509Certificate, now: number): boolean {
  return Date.parse(x509.validFrom) <= now && now <= Date.parse(x509.validTo);
}

/** The validity as AWS IoT describes it (epoch seconds). */
export function validity(x509: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(x509.validFrom) / 1000, notAfter: Date.parse(x509.validTo) / 1000 };
}

/** The issuer certificate's subject names this certificate's issuer and its key verifies the signature. */
export function issuedBy(x509: X509Certificate, issuer: X509Certificate): boolean {
  return x509.issuer === issuer.subject && x509.verify(issuer.publicKey);
}

export function commonName(x509: X509Certificate): string | undefined {
  const line = x509.subject.split('\n').find((part) => part.startsWith('CN='));
  return line?.slice(3);
}

/** RSA ≥ 2048 or EC P-256/P-384/P-521. */
export function keyPolicyProblem(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    return (details.modulusLength ?? 0) >= 2048 ? undefined : `RSA keys must be at least 2048 bits, not ${details.modulusLength}`;
  }
  if (key.asymmetricKeyType === 'ec') {
    return ACCEPTED_CURVES.has(details.namedCurve ?? '') ? undefined : `the EC curve ${details.namedCurve} is not supported`;
  }
  return `${key.asymmetricKeyType} keys are not supported`;
}

/** Key and signature algorithm rules AWS IoT applies to device certificates. */
export function deviceCertificateProblem(x509: X509Certificate): string | undefined {
  const keyProblem = keyPolicyProblem(x509.publicKey);
  if (keyProblem) return `The certificate key is not supported: ${keyProblem}`;
  const oid = signatureAlgorithmOid(x509.raw);
  if (!oid || !ACCEPTED_SIGNATURE_OIDS[oid]) return 'The certificate signature algorithm is not supported (SHA-256 or stronger with RSA or ECDSA)';
  return undefined;
}
