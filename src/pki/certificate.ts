import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, Extension, Extensions, Name, SubjectPublicKeyInfo, TBSCertificate, Validity, Version } from '@peculiar/asn1-x509';
import { signatureAlgorithmIdentifier, SigningKey } from './signing';

/** Everything that goes into a certificate; the profile code decides each field, this module only encodes. */
export interface CertificateTemplate {
  serial: Buffer;
  issuer: Name;
  subject: Name;
  subjectPublicKeyInfo: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Extension[];
}

/**
 * Encodes the TBSCertificate with DER and has the issuer key sign it. Times are whole seconds,
 * UTCTime through 2049 and GeneralizedTime after (RFC 5280 §4.1.2.5), handled by the Time type.
 */
export async function signCertificate(template: CertificateTemplate, issuerKey: SigningKey): Promise<Buffer> {
  const signatureAlgorithm = signatureAlgorithmIdentifier(issuerKey.algorithm);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: toArrayBuffer(template.serial),
    signature: signatureAlgorithm,
    issuer: template.issuer,
    validity: new Validity({ notBefore: template.notBefore, notAfter: template.notAfter }),
    subject: template.subject,
    subjectPublicKeyInfo: AsnConvert.parse(template.subjectPublicKeyInfo, SubjectPublicKeyInfo),
    extensions: new Extensions(template.extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = await issuerKey.sign(tbsDer);
  const certificate = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm,
    signatureValue: toArrayBuffer(signature),
  });
  return Buffer.from(AsnConvert.serialize(certificate));
}

/** SHA-256 of the DER, lowercase hex: our fingerprint and the AWS IoT certificateId. */
export function fingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

export function parseCertificate(der: Buffer): Certificate {
  return AsnConvert.parse(der, Certificate);
}

export function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
