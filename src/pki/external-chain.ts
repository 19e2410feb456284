import { webcrypto } from 'node:crypto';
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509ChainBuilder,
} from './x509-library';
import { Errors } from '../common/errors';
import { certificateParts } from './certificate';
import { decodeSinglePem, PemError } from './der';

/**
 * Checks a CA certificate an external (offline) root signed for one of our keys, and the chain that came with it
 * (docs/external-roots.md). @peculiar/x509 reads every certificate: nothing here trusts our own DER reader with input
 * from outside. Each failed check is its own stable error code, and the message names the certificate concerned.
 */

export const MAX_UPLOADED_CERTIFICATE_PEM_LENGTH = 16 * 1024;
export const MAX_UPLOADED_CHAIN_PEM_LENGTH = 40 * 1024;
/** The uploaded chain: the external issuers up to and including the root. Real hierarchies have one to three. */
export const MAX_UPLOADED_CHAIN_CERTIFICATES = 10;

export interface ExternalUpload {
  certificatePem: string;
  chainPem: string;
}

export interface ExpectedCertificate {
  /** The authority's key: the uploaded certificate must certify exactly this SubjectPublicKeyInfo. */
  subjectPublicKeyInfo: Buffer;
  /** DER of the subject the CSR asked for: the certificate's subject must name the same (see sameName). */
  subject: Buffer;
  now: Date;
}

export interface ValidatedExternalCertificate {
  certificateDer: Buffer;
  /** The issuers of the certificate, its direct issuer first, up to and including the self-signed root. */
  issuersDer: Buffer[];
  serial: string;
  /** The issuer's name, one line (for the audit trail). */
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints pathLenConstraint of the uploaded certificate (null: none). */
  pathLength: number | null;
}

/** The WebCrypto @peculiar/x509 verifies with (node's own, named rather than left to its default). */
const crypto = webcrypto as unknown as Parameters<X509Certificate['verify']>[1];

export async function validateExternalCertificate(upload: ExternalUpload, expected: ExpectedCertificate): Promise<ValidatedExternalCertificate> {
  const certificate = readCertificate(upload.certificatePem);
  const chain = readChain(upload.chainPem);

  const certificateDer = Buffer.from(certificate.rawData);
  const parts = certificateParts(certificateDer);
  if (!parts.subjectPublicKeyInfo.equals(expected.subjectPublicKeyInfo)) {
    throw Errors.uploadedCertificateKeyMismatch(
      `certificate key: the certificate certifies another public key than this authority's; sign the CSR this authority returned (${certificate.subject})`,
    );
  }
  if (!sameName(parts.subject, expected.subject)) {
    throw Errors.uploadedCertificateSubjectMismatch(`certificate subject: "${certificate.subject}" is not the subject of this authority's CSR`);
  }

  const path = await buildPath(certificate, chain);
  const issuers = path.slice(1);
  for (const [index, cert] of path.entries()) checkValidity(cert, index === 0 ? 'the certificate' : 'issuer', expected.now);
  checkCaAndPathLength(path);
  for (const cert of path) checkKeyCertSign(cert, cert === certificate ? 'the certificate' : 'issuer');
  // We publish CRLs signed by this key (RFC 5280 §4.2.1.3: cRLSign is what lets a relying party accept them).
  if (!hasKeyUsage(certificate, KeyUsageFlags.cRLSign)) {
    throw Errors.uploadedCertificateCrlSignMissing(`keyUsage: the certificate lacks cRLSign, which the CRLs this authority signs need (${certificate.subject})`);
  }

  const basic = certificate.getExtension(BasicConstraintsExtension);
  return {
    certificateDer,
    issuersDer: issuers.map((cert) => Buffer.from(cert.rawData)),
    serial: certificate.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''),
    issuer: certificate.issuer,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    pathLength: basic?.pathLength ?? null,
  };
}

function readCertificate(pem: string): X509Certificate {
  if (pem.length > MAX_UPLOADED_CERTIFICATE_PEM_LENGTH) {
    throw Errors.uploadedCertificateUnreadable(`certificatePem is longer than ${MAX_UPLOADED_CERTIFICATE_PEM_LENGTH} characters`);
  }
  let der: Buffer;
  try {
    der = decodeSinglePem(pem, ['CERTIFICATE']);
  } catch (err) {
    if (err instanceof PemError) throw Errors.uploadedCertificateUnreadable(`certificatePem ${err.message}`);
    throw err;
  }
  return parse(der, 'certificatePem');
}

/** The PEM blocks of chainPem, in any order; the path is built from them by name, key identifier and signature. */
function readChain(pem: string): X509Certificate[] {
  if (pem.length > MAX_UPLOADED_CHAIN_PEM_LENGTH) {
    throw Errors.chainTooLong(`chainPem is longer than ${MAX_UPLOADED_CHAIN_PEM_LENGTH} characters`);
  }
  const blocks = pem.match(/-----BEGIN [^-]*-----[\s\S]*?-----END [^-]*-----/g) ?? [];
  if (blocks.length === 0) throw Errors.chainIncomplete('chainPem holds no certificate: it must hold the issuers up to and including the self-signed root');
  if (blocks.length > MAX_UPLOADED_CHAIN_CERTIFICATES) {
    throw Errors.chainTooLong(`chainPem holds ${blocks.length} certificates; at most ${MAX_UPLOADED_CHAIN_CERTIFICATES} are accepted`);
  }
  const rest = blocks.reduce((text, block) => text.replace(block, ''), pem);
  if (rest.trim() !== '') throw Errors.uploadedCertificateUnreadable('chainPem has text outside its PEM blocks');
  return blocks.map((block, i) => {
    try {
      return parse(decodeSinglePem(block, ['CERTIFICATE']), `chainPem certificate ${i + 1}`);
    } catch (err) {
      if (err instanceof PemError) throw Errors.uploadedCertificateUnreadable(`chainPem certificate ${i + 1} ${err.message}`);
      throw err;
    }
  });
}

function parse(der: Buffer, what: string): X509Certificate {
  try {
    const cert = new X509Certificate(der);
    // Touch the fields the checks read, so a malformed extension fails here and not halfway through.
    void cert.subject;
    void cert.issuer;
    void cert.extensions;
    return cert;
  } catch {
    throw Errors.uploadedCertificateUnreadable(`${what} is not a valid DER X.509 certificate`);
  }
}

/**
 * The path from the certificate to a self-signed root, all of it from chainPem: X509ChainBuilder finds each issuer by
 * name, key identifier and signature. When it stops short of a root, the reason is told apart: an issuer named right
 * whose key did not sign (a root that did not sign it), or no issuer at all (the root, or a link, missing).
 */
async function buildPath(certificate: X509Certificate, chain: X509Certificate[]): Promise<X509Certificate[]> {
  if (await certificate.isSelfSigned(crypto)) {
    throw Errors.chainIncomplete(`chain: the certificate is self-signed; upload the certificate the external root signed (${certificate.subject})`);
  }
  const others = chain.filter((cert) => !Buffer.from(cert.rawData).equals(Buffer.from(certificate.rawData)));
  const built = [...(await new X509ChainBuilder({ certificates: others }).build(certificate, crypto))];
  const last = built[built.length - 1];
  if (last === certificate || !(await last.isSelfSigned(crypto))) {
    const named = others.filter((cert) => cert.subject === last.issuer);
    if (named.length > 0) {
      throw Errors.chainSignatureInvalid(`signature: the signature of "${last.subject}" does not verify with the key of any certificate named "${last.issuer}" in chainPem`);
    }
    throw Errors.chainIncomplete(
      `chain: chainPem has no issuer "${last.issuer}" of "${last.subject}"; it must hold every issuer up to and including the self-signed root`,
    );
  }
  // The builder checked each link on its way; checked again here, each named, so this module states what it verified.
  for (let i = 0; i < built.length; i++) {
    const issuer = built[Math.min(i + 1, built.length - 1)];
    if (!(await built[i].verify({ publicKey: issuer, signatureOnly: true }, crypto))) {
      throw Errors.chainSignatureInvalid(`signature: the signature of "${built[i].subject}" does not verify with the key of "${issuer.subject}"`);
    }
    const hash = (built[i].signatureAlgorithm as { hash?: { name?: string } }).hash?.name;
    if (i < built.length - 1 && (hash === undefined || hash === 'SHA-1')) {
      throw Errors.chainWeakSignatureAlgorithm(`signature: "${built[i].subject}" is signed with ${hash ?? 'an unsupported algorithm'}; SHA-256 or stronger is required`);
    }
  }
  return built;
}

/**
 * The same name: the same DER, or the same attributes and values in another string encoding (a root's software may
 * re-encode a UTF8String as a PrintableString). What the authority signs carries the certificate's subject byte for
 * byte either way, so issuer/subject chaining stays exact.
 */
function sameName(a: Buffer, b: Buffer): boolean {
  return a.equals(b) || new Name(a).toString() === new Name(b).toString();
}

function checkValidity(cert: X509Certificate, role: string, now: Date): void {
  if (cert.notAfter.getTime() < now.getTime()) {
    throw Errors.chainCertificateExpired(`validity: ${role} "${cert.subject}" expired at ${cert.notAfter.toISOString()}`);
  }
  if (cert.notBefore.getTime() > now.getTime()) {
    throw Errors.chainCertificateNotYetValid(`validity: ${role} "${cert.subject}" is not valid before ${cert.notBefore.toISOString()}`);
  }
}

/**
 * RFC 5280 §4.2.1.9: every certificate of the path is a CA (basicConstraints cA TRUE), and a CA's pathLenConstraint
 * is the number of intermediate CA certificates that may follow it in a path. The uploaded certificate is itself an
 * intermediate that will issue certificates, so the issuer `i` links above it (direct issuer: 1) is followed by `i`
 * intermediates: it needs pathLen ≥ i. A root with pathLen 0 cannot certify our authority at all.
 */
function checkCaAndPathLength(path: X509Certificate[]): void {
  for (const [index, cert] of path.entries()) {
    const basic = cert.getExtension(BasicConstraintsExtension);
    const role = index === 0 ? 'the certificate' : 'issuer';
    if (!basic?.ca) throw Errors.chainNotACa(`basicConstraints: ${role} "${cert.subject}" is not a CA (cA is not TRUE)`);
    if (index > 0 && basic.pathLength !== undefined && basic.pathLength < index) {
      throw Errors.chainPathLengthExceeded(
        `basicConstraints: issuer "${cert.subject}" has pathLen ${basic.pathLength}, but ${index} intermediate CA certificate${index === 1 ? '' : 's'} would follow it (this authority included)`,
      );
    }
  }
}

function checkKeyCertSign(cert: X509Certificate, role: string): void {
  // RFC 5280 §4.2.1.3: a CA certificate whose key verifies certificates MUST carry keyUsage with keyCertSign.
  if (!hasKeyUsage(cert, KeyUsageFlags.keyCertSign)) {
    throw Errors.chainKeyCertSignMissing(`keyUsage: ${role} "${cert.subject}" has no keyUsage keyCertSign`);
  }
}

function hasKeyUsage(cert: X509Certificate, flag: KeyUsageFlags): boolean {
  const usage = cert.getExtension(KeyUsagesExtension);
  return usage !== null && (usage.usages & flag) !== 0;
}

/**
 * The subjectKeyIdentifier a CA certificate carries, or null. What a CA signs names its issuer's key with this value
 * (AKI = the issuer's SKI, RFC 5280 §4.2.1.1), which an external root may have computed by another method than ours.
 */
export function subjectKeyIdentifierOf(der: Buffer): Buffer | null {
  const extension = new X509Certificate(der).getExtension(SubjectKeyIdentifierExtension);
  return extension ? Buffer.from(extension.keyId, 'hex') : null;
}
