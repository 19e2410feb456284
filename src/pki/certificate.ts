import { createHash } from 'node:crypto';
import { readTlv } from './der';
import { bitString, explicit, sequence, smallInteger, time, unsignedInteger } from './der-writer';
import { EncodedExtension } from './extensions';
import { signatureAlgorithmIdentifier, SigningKey } from './signing';

/** Everything that goes into a certificate; the profile code decides each field, this module only encodes. */
export interface CertificateTemplate {
  serial: Buffer;
  /** DER of the issuer Name: the issuing CA's subject, byte for byte. */
  issuer: Buffer;
  /** DER of the subject Name. */
  subject: Buffer;
  subjectPublicKeyInfo: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: EncodedExtension[];
}

/**
 * Encodes the TBSCertificate (RFC 5280 §4.1) as DER and has the issuer key sign it. Times are whole
 * seconds, UTCTime through 2049 and GeneralizedTime after (§4.1.2.5).
 */
export async function signCertificate(template: CertificateTemplate, issuerKey: SigningKey): Promise<Buffer> {
  const signatureAlgorithm = signatureAlgorithmIdentifier(issuerKey.algorithm);
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(template.serial),
    signatureAlgorithm,
    template.issuer,
    sequence(time(template.notBefore), time(template.notAfter)),
    template.subject,
    template.subjectPublicKeyInfo,
    explicit(3, sequence(...template.extensions.map((extension) => extension.der))),
  );
  const signature = await issuerKey.sign(tbs);
  return sequence(tbs, signatureAlgorithm, bitString(signature));
}

/** SHA-256 of the DER, lowercase hex: our fingerprint and the AWS IoT certificateId. */
export function fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The raw DER of the parts of a certificate a CA needs from its own certificate. */
export interface CertificateParts {
  issuer: Buffer;
  subject: Buffer;
  subjectPublicKeyInfo: Buffer;
}

/** Splits a certificate into its TBS fields without re-encoding anything (names stay byte-identical). */
export function certificateParts(der: Buffer): CertificateParts {
  const certificate = readTlv(der, 0);
  const tbs = readTlv(der, certificate.contentStart);
  let cursor = tbs.contentStart;
  const next = () => {
    const element = readTlv(der, cursor);
    cursor = element.end;
    return der.subarray(element.start, element.end);
  };
  if (der[cursor] === 0xa0) next(); // version
  next(); // serialNumber
  next(); // signature
  const issuer = next();
  next(); // validity
  const subject = next();
  const subjectPublicKeyInfo = next();
  return { issuer, subject, subjectPublicKeyInfo };
}
