/**
 * Secure-element manifests in the format Microchip's Trust Platform ships (Trust&GO, TrustFLEX; docs/secure-elements.md):
 * a JSON array of "signed secure elements", each a JWS in the flattened JSON serialization (RFC 7515 §7.2.2)
 *
 *   {"payload": b64url(JSON), "protected": b64url({"typ":"JWT","alg":"ES256","kid":…,"x5t#S256":…}),
 *    "header": {"uniqueId": "0123…"}, "signature": b64url(r‖s)}
 *
 * signed by the vendor's manifest signer, whose payload names the device (uniqueId, model, partNumber, manufacturer,
 * provisioner, distributor, groupId, provisioningTimestamp) and its public keys as JWKs:
 * `publicKeySet.keys[] {kid, kty, crv, x, y, x5c}`, where a key's x5c is the device certificate followed by the
 * secure element's signer (the intermediate that issued it), in standard base64 (RFC 7517 §4.7).
 *
 * This module only decodes and verifies one entry against the manifest signer certificate the operator uploaded; it
 * never fetches anything. Certificates are read with node:crypto's X509Certificate (native; a 100,000-entry manifest
 * makes 200,000 signature checks).
 */
import { createHash, KeyObject, verify, X509Certificate } from 'node:crypto';
import { certificateParts, fingerprint } from './certificate';
import { checkPublicKey } from './key-policy';

/** Why an entry was refused (kept with its index in the import's failures). */
export type ManifestEntryFailure =
  | 'MALFORMED_ENTRY'
  | 'UNSUPPORTED_ALGORITHM'
  | 'WRONG_SIGNER'
  | 'BAD_SIGNATURE'
  | 'UNIQUE_ID_MISMATCH'
  | 'NO_CERTIFICATE'
  | 'CHAIN_INVALID'
  | 'KEY_MISMATCH'
  | 'KEY_NOT_ALLOWED';

export class ManifestEntryError extends Error {
  constructor(
    readonly code: ManifestEntryFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ManifestEntryError';
  }
}

/** The manifest signer certificate, read once per import. */
export interface ManifestSigner {
  der: Buffer;
  certificate: X509Certificate;
  publicKey: KeyObject;
  /** base64url SHA-256 of the DER: the `x5t#S256` an entry's protected header may carry. */
  thumbprint: string;
  /** SHA-256 of the DER, lowercase hex. */
  fingerprint: string;
}

/** A verified entry: the device identity to import. */
export interface VerifiedManifestEntry {
  uniqueId: string;
  model: string | null;
  partNumber: string | null;
  manufacturer: string | null;
  provisioningTimestamp: string | null;
  /** x5c[0]: the device certificate. */
  certificateDer: Buffer;
  /** x5c[1…]: its signer (the secure element's intermediate) and anything above it, as given. */
  chainDer: Buffer[];
  fingerprint: string;
  /** Lowercase hex without leading zero octets, as our own serials are stored. */
  serial: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  publicKeySha256: string;
  keyDescription: string;
  /** SHA-256 of the device certificate's issuer DER (x5c[1]), lowercase hex: groups devices by their signer. */
  issuerFingerprint: string;
}

const ALGORITHMS: Record<string, { hash: string; curve: string; length: number }> = {
  ES256: { hash: 'sha256', curve: 'prime256v1', length: 64 },
  ES384: { hash: 'sha384', curve: 'secp384r1', length: 96 },
};

/** Entries are a few kilobytes; anything far larger is refused before it is decoded. */
export const MAX_ENTRY_CHARS = 64 * 1024;

/** Reads the manifest signer certificate (PEM, or the base64 of its DER). It must hold an EC P-256 or P-384 key. */
export function readManifestSigner(text: string): ManifestSigner {
  const body = text.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new ManifestEntryError('MALFORMED_ENTRY', 'the manifest signer certificate is not PEM or base64 DER');
  const der = Buffer.from(body, 'base64');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(der);
  } catch {
    throw new ManifestEntryError('MALFORMED_ENTRY', 'the manifest signer certificate does not parse as X.509');
  }
  const publicKey = certificate.publicKey;
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  if (publicKey.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
    throw new ManifestEntryError('UNSUPPORTED_ALGORITHM', 'the manifest signer key must be EC P-256 or P-384 (ES256/ES384)');
  }
  const raw = Buffer.from(certificate.raw);
  return { der: raw, certificate, publicKey, thumbprint: createHash('sha256').update(raw).digest('base64url'), fingerprint: fingerprint(raw) };
}

/**
 * Verifies one manifest entry (already JSON-parsed) and returns the device identity it carries:
 * 1. the JWS: ES256/ES384 only (no `none`, no HMAC, no `crit`), signed by `signer` (the `x5t#S256` header, when
 *    present, must name it; the signature must verify with its key) — a manifest cannot choose its own signer;
 * 2. the payload's uniqueId equals the unprotected header's (which is what tools index entries by);
 * 3. a public key with an x5c: x5c[0] (the device certificate) must be issued and signed by x5c[1] (the secure
 *    element's signer), and each further certificate must sign the one before it;
 * 4. the JWK's x/y must be the device certificate's key, and the key must pass our key policy (AWS IoT's).
 */
export function verifyManifestEntry(entry: unknown, signer: ManifestSigner): VerifiedManifestEntry {
  if (!isObject(entry)) throw malformed('the entry is not a JSON object');
  const { protected: protectedB64, payload: payloadB64, signature: signatureB64, header } = entry;
  if (typeof protectedB64 !== 'string' || typeof payloadB64 !== 'string' || typeof signatureB64 !== 'string') {
    throw malformed('the entry needs string "protected", "payload" and "signature" members (flattened JWS JSON)');
  }
  const protectedHeader = decodeJsonB64url(protectedB64, 'protected');
  const alg = protectedHeader.alg;
  const spec = typeof alg === 'string' && Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg] : undefined;
  if (!spec) throw new ManifestEntryError('UNSUPPORTED_ALGORITHM', `alg ${JSON.stringify(alg)} is not accepted; manifests are signed ES256 or ES384`);
  if ('crit' in protectedHeader) throw malformed('the crit header is not supported');
  const thumbprint = protectedHeader['x5t#S256'];
  if (thumbprint !== undefined && thumbprint !== signer.thumbprint) {
    throw new ManifestEntryError('WRONG_SIGNER', 'the entry names another manifest signer (x5t#S256) than the uploaded one');
  }
  if (signer.publicKey.asymmetricKeyDetails?.namedCurve !== spec.curve) {
    throw new ManifestEntryError('WRONG_SIGNER', `the entry is signed ${String(alg)}, which the uploaded manifest signer's key cannot make`);
  }
  const signature = decodeB64url(signatureB64, 'signature');
  const signingInput = Buffer.from(`${protectedB64}.${payloadB64}`, 'ascii');
  let ok = false;
  if (signature.length === spec.length) {
    try {
      ok = verify(spec.hash, signingInput, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ManifestEntryError('BAD_SIGNATURE', `the ${String(alg)} signature does not verify with the manifest signer's key`);

  const payload = decodeJsonB64url(payloadB64, 'payload');
  const uniqueId = payload.uniqueId;
  if (typeof uniqueId !== 'string' || !/^[0-9A-Za-z_-]{1,64}$/.test(uniqueId)) throw malformed('payload.uniqueId must be 1-64 characters of [0-9A-Za-z_-]');
  if (isObject(header) && header.uniqueId !== undefined && header.uniqueId !== uniqueId) {
    throw new ManifestEntryError('UNIQUE_ID_MISMATCH', `header.uniqueId ${JSON.stringify(header.uniqueId)} is not payload.uniqueId ${uniqueId}`);
  }
  const keys = isObject(payload.publicKeySet) ? payload.publicKeySet.keys : undefined;
  if (!Array.isArray(keys)) throw malformed('payload.publicKeySet.keys must be an array');
  const key = keys.find((k): k is Record<string, unknown> => isObject(k) && Array.isArray(k.x5c) && k.x5c.length > 0);
  if (!key) throw new ManifestEntryError('NO_CERTIFICATE', 'no key of publicKeySet carries a certificate chain (x5c)');
  const x5c = key.x5c as unknown[];
  if (x5c.length < 2) throw new ManifestEntryError('CHAIN_INVALID', 'x5c must hold the device certificate and its signer');
  if (x5c.length > 4) throw malformed('x5c holds more than 4 certificates');
  // The signers above the device certificate repeat across a manifest's entries: parsed once (parsing is the cost).
  const chain = x5c.map((item, i) => (i === 0 ? readX5c(item, i) : readCachedX5c(item, i)));

  for (let i = 0; i + 1 < chain.length; i++) {
    const [child, parent] = [chain[i], chain[i + 1]];
    let signed = false;
    try {
      signed = child.checkIssued(parent) && child.verify(parent.publicKey);
    } catch {
      signed = false;
    }
    if (!signed) throw new ManifestEntryError('CHAIN_INVALID', `x5c[${i}] (${child.subject.replace(/\n/g, ', ')}) is not issued and signed by x5c[${i + 1}] (${parent.subject.replace(/\n/g, ', ')})`);
  }

  const device = chain[0];
  const certificateDer = Buffer.from(device.raw);
  const spki = certificateParts(certificateDer).subjectPublicKeyInfo;
  let keyInfo;
  try {
    keyInfo = checkPublicKey(spki);
  } catch (err) {
    throw new ManifestEntryError('KEY_NOT_ALLOWED', (err as Error).message);
  }
  if (key.kty === 'EC') {
    const jwk = keyInfo.keyObject.export({ format: 'jwk' });
    if (jwk.crv !== key.crv || jwk.x !== key.x || jwk.y !== key.y) {
      throw new ManifestEntryError('KEY_MISMATCH', `publicKeySet key ${JSON.stringify(key.kid)} is not the key of its x5c[0] certificate`);
    }
  }
  const issuerDer = Buffer.from(chain[1].raw);
  return {
    uniqueId,
    model: stringOrNull(payload.model),
    partNumber: stringOrNull(payload.partNumber),
    manufacturer: isObject(payload.manufacturer) ? stringOrNull(payload.manufacturer.organizationName) : null,
    provisioningTimestamp: stringOrNull(payload.provisioningTimestamp),
    certificateDer,
    chainDer: chain.slice(1).map((c) => Buffer.from(c.raw)),
    fingerprint: fingerprint(certificateDer),
    serial: device.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''),
    subject: device.subject.split('\n').join(', '),
    notBefore: new Date(device.validFrom),
    notAfter: new Date(device.validTo),
    publicKeySha256: keyInfo.sha256,
    keyDescription: keyInfo.description,
    issuerFingerprint: fingerprint(issuerDer),
  };
}

/** The uniqueId an entry claims, read without verifying anything (for failure reports). */
export function claimedUniqueId(entry: unknown): string | null {
  if (isObject(entry) && isObject(entry.header) && typeof entry.header.uniqueId === 'string') return entry.header.uniqueId.slice(0, 64);
  return null;
}

/** Signer certificates already parsed, by their base64 text (a manifest has one or a few). */
const signerCache = new Map<string, X509Certificate>();
const SIGNER_CACHE_SIZE = 64;

function readCachedX5c(item: unknown, index: number): X509Certificate {
  if (typeof item === 'string') {
    const cached = signerCache.get(item);
    if (cached) return cached;
  }
  const certificate = readX5c(item, index);
  if (signerCache.size >= SIGNER_CACHE_SIZE) signerCache.delete(signerCache.keys().next().value as string);
  signerCache.set(item as string, certificate);
  return certificate;
}

function readX5c(item: unknown, index: number): X509Certificate {
  if (typeof item !== 'string' || item.length > 16384) throw malformed(`x5c[${index}] must be a base64 certificate`);
  try {
    // RFC 7517 §4.7 says standard base64; base64url is accepted too (Buffer reads both).
    return new X509Certificate(Buffer.from(item, 'base64'));
  } catch {
    throw malformed(`x5c[${index}] does not parse as an X.509 certificate`);
  }
}

function decodeB64url(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw malformed(`${what} is not base64url`);
  return Buffer.from(text, 'base64url');
}

function decodeJsonB64url(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeB64url(text, what).toString('utf8'));
  } catch (err) {
    if (err instanceof ManifestEntryError) throw err;
    throw malformed(`${what} is not base64url JSON`);
  }
  if (!isObject(value)) throw malformed(`${what} is not a JSON object`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, 200) : null;
}

function malformed(message: string): ManifestEntryError {
  return new ManifestEntryError('MALFORMED_ENTRY', message);
}
