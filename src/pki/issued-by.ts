import { AuthorityKeyIdentifierExtension, SubjectKeyIdentifierExtension, X509Certificate } from './x509-library';
import { keyIdentifier } from './extensions';

/**
 * Run-time validation of a certificate that comes from outside (an mTLS client certificate, a JWT's x5c) against the
 * certificate of the authority that issued it, with @peculiar/x509: a well-kept parser and verifier that shares no
 * code with our own DER encoder, so a bug in one is not mirrored in the check (docs/architecture.md, "Libraries:
 * lean DER vs @peculiar/x509 and pkijs"). Pure: the clock's value is passed in.
 */

export type IssuedByFailure = 'malformed' | 'issuer-name' | 'authority-key-id' | 'signature' | 'not-yet-valid' | 'expired';

export interface ValidityWindow {
  notBefore: Date;
  notAfter: Date;
}

export type IssuedByResult =
  | { ok: true; validity: ValidityWindow }
  | { ok: false; failure: IssuedByFailure; message: string };

type Failure = Extract<IssuedByResult, { ok: false }>;

/**
 * Whether `certificateDer` was issued by the authority whose certificate is `authorityCertificateDer`, and is valid
 * at `now`: see verifyIssuedBy and validityProblem, which this runs in that order.
 */
export async function validateIssuedBy(certificateDer: Uint8Array, authorityCertificateDer: Uint8Array, now: Date): Promise<IssuedByResult> {
  const issued = await verifyIssuedBy(certificateDer, authorityCertificateDer);
  if (!issued.ok) return issued;
  return validityProblem(issued.validity, now) ?? issued;
}

/**
 * The checks that do not depend on the time, so a caller may remember their success (the certificate and the
 * authority's certificate never change):
 * - the issuer name is the authority's subject (RFC 5280 §4.1.2.4; compared as DER: we sign with the authority's
 *   subject copied byte for byte);
 * - the authority key identifier names the authority's key (§4.2.1.1: its SKI, or the SHA-1 of its key when its
 *   certificate has none), so a certificate under a namesake CA with another key is refused before any signature;
 * - the signature verifies with the authority's public key (§6.1.3 (a)(1)).
 * Returns the certificate's validity window on success.
 */
export async function verifyIssuedBy(certificateDer: Uint8Array, authorityCertificateDer: Uint8Array): Promise<IssuedByResult> {
  let certificate: X509Certificate;
  let authority: X509Certificate;
  try {
    certificate = new X509Certificate(certificateDer);
    authority = new X509Certificate(authorityCertificateDer);
  } catch {
    return failure('malformed', 'the certificate or its authority certificate is not a well-formed X.509 certificate');
  }
  if (!Buffer.from(certificate.issuerName.toArrayBuffer()).equals(Buffer.from(authority.subjectName.toArrayBuffer()))) {
    return failure('issuer-name', `the issuer "${certificate.issuer}" is not the authority's subject "${authority.subject}"`);
  }
  const authorityKeyId = certificate.getExtension(AuthorityKeyIdentifierExtension)?.keyId;
  if (!authorityKeyId) return failure('authority-key-id', 'the certificate has no authority key identifier');
  // Without an SKI in the authority's certificate, method (1) of RFC 5280 §4.2.1.2 (what we use for our own CAs).
  const expectedKeyId = authority.getExtension(SubjectKeyIdentifierExtension)?.keyId ?? keyIdentifier(Buffer.from(authority.publicKey.rawData)).toString('hex');
  if (authorityKeyId.toLowerCase() !== expectedKeyId.toLowerCase()) {
    return failure('authority-key-id', `the authority key identifier ${authorityKeyId} is not the authority's key identifier ${expectedKeyId}`);
  }
  let verified = false;
  try {
    verified = await certificate.verify({ publicKey: authority, signatureOnly: true });
  } catch {
    verified = false;
  }
  if (!verified) return failure('signature', "the certificate's signature does not verify with the authority's public key");
  return { ok: true, validity: { notBefore: certificate.notBefore, notAfter: certificate.notAfter } };
}

/** RFC 5280 §4.1.2.5: valid from notBefore through notAfter, both inclusive. Undefined when `now` is inside. */
export function validityProblem(validity: ValidityWindow, now: Date): Failure | undefined {
  if (now < validity.notBefore) return failure('not-yet-valid', `the certificate is not valid before ${validity.notBefore.toISOString()}`);
  if (now > validity.notAfter) return failure('expired', `the certificate expired at ${validity.notAfter.toISOString()}`);
  return undefined;
}

function failure(kind: IssuedByFailure, message: string): Failure {
  return { ok: false, failure: kind, message };
}
