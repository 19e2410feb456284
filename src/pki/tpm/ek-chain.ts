import { createHash, createPublicKey, KeyObject, webcrypto } from 'node:crypto';
import { Errors } from '../../common/errors';
import { decodeSinglePem, PemError } from '../der';
import { BasicConstraintsExtension, ExtendedKeyUsageExtension, KeyUsageFlags, KeyUsagesExtension, X509Certificate } from '../x509-library';

const crypto = webcrypto as unknown as Parameters<X509Certificate['verify']>[1];

/** An allow-listed TPM manufacturer root (EK-issuing CA). */
export interface TrustedEkRoot {
  id: string;
  certificateDer: Buffer;
}

export interface ValidatedEk {
  ekDer: Buffer;
  /** SHA-256 of the EK certificate DER, lowercase hex. */
  fingerprint: string;
  issuer: string;
  /** The EK's public key, as the certificate states it: the key MakeCredential encrypts to. */
  publicKey: KeyObject;
  root: TrustedEkRoot;
}

const MAX_DEPTH = 5;

/** tcg-kp-EKCertificate (TCG EK Credential Profile): the extended key usage that says a certificate is an EK's. */
export const TCG_KP_EK_CERTIFICATE = '2.23.133.8.1';

/**
 * The certificate must be an EK certificate, not some other certificate the same manufacturer CA signed: not a CA,
 * and its extended key usage names tcg-kp-EKCertificate (EK Credential Profile). Otherwise anyone holding a key that
 * CA certified for another purpose (a TLS key, a code-signing key) could pose as a TPM's EK.
 */
function checkEkPurpose(ek: X509Certificate): void {
  if (ek.getExtension(BasicConstraintsExtension)?.ca) throw Errors.tpmEkUntrusted('the EK certificate is a CA certificate, not an EK certificate');
  const usages = ek.getExtension(ExtendedKeyUsageExtension)?.usages.map(String) ?? [];
  if (!usages.includes(TCG_KP_EK_CERTIFICATE)) {
    throw Errors.tpmEkUntrusted(`the EK certificate's extended key usage does not name tcg-kp-EKCertificate (${TCG_KP_EK_CERTIFICATE}): it is not an EK certificate`);
  }
}

/** An intermediate on the EK path must be a CA allowed to sign certificates (keyCertSign when it states key usages). */
function canIssue(cert: X509Certificate): boolean {
  if (!cert.getExtension(BasicConstraintsExtension)?.ca) return false;
  const usage = cert.getExtension(KeyUsagesExtension);
  return usage === null || (usage.usages & KeyUsageFlags.keyCertSign) !== 0;
}

/** A certificate given as PEM or base64 DER (what tpm2_nvread writes, base64-encoded). */
export function readCertificate(text: string, what: string): X509Certificate {
  let der: Buffer;
  try {
    der = text.includes('-----BEGIN') ? decodeSinglePem(text, ['CERTIFICATE']) : Buffer.from(text.trim(), 'base64');
  } catch (err) {
    if (err instanceof PemError) throw Errors.tpmEvidenceMalformed(`${what}: ${err.message}`);
    throw err;
  }
  try {
    return new X509Certificate(der);
  } catch {
    throw Errors.tpmEvidenceMalformed(`${what} is not an X.509 certificate`);
  }
}

function inValidity(cert: X509Certificate, now: Date): boolean {
  return cert.notBefore <= now && now <= cert.notAfter;
}

/**
 * Validates the EK certificate up to one of the allow-listed manufacturer roots: each link by issuer name and
 * signature, every certificate on the path within its validity, the EK certificate an EK's (checkEkPurpose),
 * intermediates (from `intermediates`, sent by the device) CAs with keyCertSign. The path must end in a root of `roots`; a self-signed certificate the device sends is never trusted.
 */
export async function validateEkChain(ek: X509Certificate, intermediates: X509Certificate[], roots: TrustedEkRoot[], now: Date): Promise<ValidatedEk> {
  const trusted = roots.map((root) => ({ root, cert: new X509Certificate(root.certificateDer) }));
  if (!inValidity(ek, now)) throw Errors.tpmEkUntrusted(`the EK certificate is valid from ${ek.notBefore.toISOString()} to ${ek.notAfter.toISOString()}`);
  checkEkPurpose(ek);
  let current = ek;
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    for (const candidate of trusted) {
      if (candidate.cert.subject === current.issuer && inValidity(candidate.cert, now) && (await current.verify({ publicKey: candidate.cert, signatureOnly: true }, crypto))) {
        const ekDer = Buffer.from(ek.rawData);
        return {
          ekDer,
          fingerprint: createHash('sha256').update(ekDer).digest('hex'),
          issuer: ek.issuer,
          publicKey: createPublicKey({ key: Buffer.from(ek.publicKey.rawData), format: 'der', type: 'spki' }),
          root: candidate.root,
        };
      }
    }
    let next: X509Certificate | undefined;
    for (const candidate of intermediates) {
      if (candidate.subject !== current.issuer || candidate === current) continue;
      if (!canIssue(candidate) || !inValidity(candidate, now)) continue;
      if (await current.verify({ publicKey: candidate, signatureOnly: true }, crypto)) {
        next = candidate;
        break;
      }
    }
    if (!next) break;
    current = next;
  }
  throw Errors.tpmEkUntrusted(`the EK certificate does not chain to an allowed TPM manufacturer root (its chain ends at issuer "${current.issuer}")`);
}
