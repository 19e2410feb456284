import { createHash, createPublicKey, KeyObject } from 'node:crypto';
import { decodeOid, readTlv } from './der';
import { Errors } from '../common/errors';
import { stackless } from './stackless';

/** A public key we accept for a certificate, described well enough for policy and display. */
export interface PublicKeyInfo {
  keyObject: KeyObject;
  type: 'RSA' | 'EC';
  /** "RSA-2048", "EC-P256", ... */
  description: string;
  bits: number;
  /** `publicKeyFingerprint` of the key, computed once. */
  sha256: string;
}

type Curve = { name: string; bits: number; jwk: string };
const P256: Curve = { name: 'P256', bits: 256, jwk: 'P-256' };
const P384: Curve = { name: 'P384', bits: 384, jwk: 'P-384' };
const P521: Curve = { name: 'P521', bits: 521, jwk: 'P-521' };
/** By OpenSSL name (asymmetricKeyDetails.namedCurve) and by namedCurve OID (RFC 5480 §2.1.1.1). */
const CURVES: Record<string, Curve> = { prime256v1: P256, secp384r1: P384, secp521r1: P521 };
const CURVE_OIDS: Record<string, Curve> = { '1.2.840.10045.3.1.7': P256, '1.3.132.0.34': P384, '1.3.132.0.35': P521 };

/**
 * The key policy for anything we certify: RSA of 2048 to 8192 bits, EC P-256/P-384/P-521. AWS IoT accepts the
 * same set, so a key refused here would be refused there too. Everything else is a 422 naming the key.
 */
export function checkPublicKey(spki: Buffer): PublicKeyInfo {
  let keyObject: KeyObject;
  try {
    keyObject = spkiPublicKey(spki);
  } catch {
    throw Errors.unsupportedKey('the public key could not be parsed or uses an unsupported algorithm');
  }
  if (keyObject.asymmetricKeyType === 'rsa') {
    const details = keyObject.asymmetricKeyDetails ?? {};
    const bits = details.modulusLength ?? 0;
    if (bits < 2048) throw Errors.unsupportedKey(`RSA keys must be at least 2048 bits, got ${bits}`);
    if (bits > 8192) throw Errors.unsupportedKey(`RSA keys larger than 8192 bits are not accepted, got ${bits}`);
    if (details.publicExponent !== undefined && details.publicExponent < 65537n) {
      throw Errors.unsupportedKey('RSA public exponent must be at least 65537');
    }
    return { keyObject, type: 'RSA', description: `RSA-${bits}`, bits, sha256: publicKeyFingerprint(keyObject) };
  }
  if (keyObject.asymmetricKeyType === 'ec') {
    const point = uncompressedPoint(spki);
    if (!point) throw Errors.unsupportedKey('EC public keys must use the uncompressed point form (RFC 5480 §2.2)');
    // The curve from the SPKI's namedCurve OID (the key parsed, so the OID names its curve): asymmetricKeyDetails costs
    // more than createPublicKey itself (docs/benchmarks.md, "Issuance vs cfssl"), so it is asked only to name a refusal.
    const curve = CURVE_OIDS[namedCurveOid(spki) ?? ''] ?? CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) {
      throw Errors.unsupportedKey(`EC curve ${keyObject.asymmetricKeyDetails?.namedCurve ?? 'unknown'} is not allowed; use P-256, P-384 or P-521`);
    }
    return { keyObject, type: 'EC', description: `EC-${curve.name}`, bits: curve.bits, sha256: ecFingerprint(curve.jwk, point) };
  }
  throw Errors.unsupportedKey(`${keyObject.asymmetricKeyType ?? 'unknown'} keys are not accepted; use RSA or EC`);
}

/** The namedCurve OID of an EC SubjectPublicKeyInfo's AlgorithmIdentifier, or null (e.g. specifiedCurve parameters). */
function namedCurveOid(spki: Buffer): string | null {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.contentStart);
  const algorithmOid = readTlv(spki, algorithm.contentStart);
  if (algorithmOid.end >= algorithm.end) return null;
  const parameters = readTlv(spki, algorithmOid.end);
  return parameters.tag === 0x06 ? decodeOid(spki, parameters) : null;
}

/** The subjectPublicKey BIT STRING of an EC key must hold 0x04 ‖ X ‖ Y: that point, or null. */
function uncompressedPoint(spki: Buffer): Buffer | null {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.contentStart);
  const key = readTlv(spki, algorithm.end);
  // The BIT STRING's first content octet counts unused bits; the point follows.
  return key.tag === 0x03 && spki[key.contentStart + 1] === 0x04 ? spki.subarray(key.contentStart + 1, key.end) : null;
}

/**
 * `publicKeyFingerprint` of an EC key from its uncompressed point (already validated by createPublicKey), without a
 * JWK export: JWK x and y are the point's two fixed-length coordinates (RFC 7518 §6.2.1.2), base64url.
 */
function ecFingerprint(crv: string, point: Buffer): string {
  const half = (point.length - 1) / 2;
  const x = point.subarray(1, 1 + half).toString('base64url');
  const y = point.subarray(1 + half).toString('base64url');
  return createHash('sha256').update(`EC:${crv}:${x}:${y}`).digest('hex');
}

/**
 * SHA-256 over a canonical form of the public key (the JWK members that define it), so one key has one
 * fingerprint however its SubjectPublicKeyInfo happens to be encoded. Used to refuse CA keys and keys
 * revoked for keyCompromise.
 */
export function publicKeyFingerprint(key: Buffer | KeyObject): string {
  const keyObject = Buffer.isBuffer(key) ? createPublicKey({ key, format: 'der', type: 'spki' }) : key;
  const jwk = keyObject.export({ format: 'jwk' });
  const canonical = jwk.kty === 'EC' ? `EC:${jwk.crv}:${jwk.x}:${jwk.y}` : `${jwk.kty}:${jwk.n}:${jwk.e}`;
  return createHash('sha256').update(canonical).digest('hex');
}

/** createPublicKey of a CSR's DER SubjectPublicKeyInfo, on the hot path of every CSR; its error is replaced (see stackless). */
function spkiPublicKey(spki: Buffer): KeyObject {
  return stackless(() => createPublicKey({ key: spki, format: 'der', type: 'spki' }));
}
