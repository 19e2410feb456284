/**
 * Compact JWS / JWT (RFC 7515, RFC 7519) carrying the signer's certificate chain in `x5c`. Factory
 * stations authenticate to the exchange endpoint with these. This module only decodes, checks the
 * signature against a key the caller chose (normally the x5c leaf's, after the caller validated the
 * chain) and checks the claims; it never fetches anything (`jku`, `x5u`, `jwk`, `kid` are ignored).
 */
import { constants, KeyObject, verify } from 'node:crypto';
import { readTlv } from './der';
import { stackless } from './stackless';

export type JwsAlgorithm = 'ES256' | 'ES384' | 'RS256';

export type JwsFailure =
  | 'malformed'
  | 'unsupported-algorithm'
  | 'missing-x5c'
  | 'bad-signature'
  | 'key-mismatch'
  | 'expired'
  | 'not-yet-valid'
  | 'lifetime-too-long'
  | 'wrong-audience'
  | 'missing-jti';

export class JwsError extends Error {
  constructor(
    readonly reason: JwsFailure,
    message: string,
  ) {
    super(message);
    this.name = 'JwsError';
  }
}

export const MAX_TOKEN_LENGTH = 16384;
export const MAX_X5C_CERTIFICATES = 4;
export const MAX_X5C_CERTIFICATE_BYTES = 8192;

interface AlgorithmSpec {
  hash: 'sha256' | 'sha384';
  /** EC: the node curve name and the exact raw r‖s length; RSA: the minimum modulus. */
  key: { type: 'ec'; curve: string; signatureLength: number } | { type: 'rsa'; minBits: number };
  describe: string;
}

/** The whole allow-list. Anything else (`none`, HS*, PS*, ...) is refused before any crypto runs. */
const ALGORITHMS: Record<JwsAlgorithm, AlgorithmSpec> = {
  ES256: { hash: 'sha256', key: { type: 'ec', curve: 'prime256v1', signatureLength: 64 }, describe: 'an EC P-256 key' },
  ES384: { hash: 'sha384', key: { type: 'ec', curve: 'secp384r1', signatureLength: 96 }, describe: 'an EC P-384 key' },
  RS256: { hash: 'sha256', key: { type: 'rsa', minBits: 2048 }, describe: 'an RSA key of at least 2048 bits' },
};

export interface DecodedX5cJwt {
  header: { alg: JwsAlgorithm; x5c: string[]; typ?: string };
  payload: Record<string, unknown>;
  /** DER certificates, leaf first, exactly as sent (not validated as a chain here). */
  chain: Buffer[];
  signingInput: Buffer;
  signature: Buffer;
}

/** Splits and decodes a token, enforcing every structural rule; does not check the signature. */
export function decodeX5cJwt(token: string): DecodedX5cJwt {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
    throw new JwsError('malformed', `the token must be a string of at most ${MAX_TOKEN_LENGTH} characters`);
  }
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwsError('malformed', 'the token must have exactly three dot-separated parts');
  const rawHeader = parseJsonObject(fromBase64Url(parts[0], 'header'), 'header');
  const payload = parseJsonObject(fromBase64Url(parts[1], 'payload'), 'payload');
  const signature = fromBase64Url(parts[2], 'signature');

  const alg = rawHeader.alg;
  if (typeof alg !== 'string' || !Object.hasOwn(ALGORITHMS, alg)) {
    throw new JwsError('unsupported-algorithm', `alg ${describeValue(alg)} is not accepted; use ES256, ES384 or RS256`);
  }
  // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand, and we understand none.
  if ('crit' in rawHeader) throw new JwsError('malformed', 'the crit header is not supported');
  if (rawHeader.typ !== undefined && typeof rawHeader.typ !== 'string') throw new JwsError('malformed', 'typ must be a string');
  if (signature.length === 0) throw new JwsError('malformed', 'the signature is empty');

  const x5c = rawHeader.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0) throw new JwsError('missing-x5c', 'the header must carry a non-empty x5c certificate chain');
  if (x5c.length > MAX_X5C_CERTIFICATES) throw new JwsError('malformed', `x5c may hold at most ${MAX_X5C_CERTIFICATES} certificates`);
  const chain = x5c.map((entry: unknown, i) => decodeX5cEntry(entry, i));

  const header: DecodedX5cJwt['header'] = { alg: alg as JwsAlgorithm, x5c: x5c as string[] };
  if (rawHeader.typ !== undefined) header.typ = rawHeader.typ as string;
  // The signing input is the ASCII of the first two parts as sent, never a re-encoding.
  return { header, payload, chain, signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'), signature };
}

/**
 * Checks the token's signature with `publicKey`. The key must fit the header's alg exactly, so a token
 * cannot choose how its own signature is checked (algorithm confusion).
 */
export function verifyJwsSignature(token: string, publicKey: KeyObject): void {
  verifyDecodedJwsSignature(decodeX5cJwt(token), publicKey);
}

/** verifyJwsSignature, for a token already decoded by decodeX5cJwt (not decoded twice). */
export function verifyDecodedJwsSignature(decoded: DecodedX5cJwt, publicKey: KeyObject): void {
  const { header, signingInput, signature } = decoded;
  const spec = ALGORITHMS[header.alg];
  checkKeyFits(header.alg, publicKey);
  let ok: boolean;
  if (spec.key.type === 'ec') {
    // JWS ECDSA signatures are raw r‖s of a fixed length, not DER (RFC 7518 §3.4).
    ok =
      signature.length === spec.key.signatureLength &&
      safeVerify(() => verify(spec.hash, signingInput, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature));
  } else {
    const modulusBytes = Math.ceil((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
    ok =
      signature.length === modulusBytes &&
      safeVerify(() => verify(spec.hash, signingInput, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature));
  }
  if (!ok) throw new JwsError('bad-signature', `the ${header.alg} signature does not verify`);
}

export interface JwtClaimPolicy {
  audience: string;
  now: Date;
  maxLifetimeSeconds: number;
  clockSkewSeconds: number;
}

/** Checks exp/nbf/iat/aud/jti (RFC 7519 §4.1). `jti` and `expiresAt` are what a replay cache needs. */
export function checkJwtClaims(payload: Record<string, unknown>, policy: JwtClaimPolicy): { jti: string; expiresAt: Date } {
  const now = policy.now.getTime() / 1000;
  // An invalid Date would make every comparison below false, i.e. accept everything.
  if (!Number.isFinite(now)) throw new TypeError('checkJwtClaims: now is not a valid date');
  const skew = policy.clockSkewSeconds;

  const exp = numericDate(payload, 'exp');
  if (exp === undefined) throw new JwsError('malformed', 'the exp claim is required');
  if (exp <= now - skew) throw new JwsError('expired', 'the token has expired');
  if (exp > now + policy.maxLifetimeSeconds + skew) {
    throw new JwsError('lifetime-too-long', `the token must expire within ${policy.maxLifetimeSeconds} seconds`);
  }
  const nbf = numericDate(payload, 'nbf');
  if (nbf !== undefined && nbf > now + skew) throw new JwsError('not-yet-valid', 'the token is not valid yet (nbf)');
  const iat = numericDate(payload, 'iat');
  if (iat !== undefined && iat > now + skew) throw new JwsError('not-yet-valid', 'the token was issued in the future (iat)');

  const aud = payload.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.includes(policy.audience)) throw new JwsError('wrong-audience', 'the token is not addressed to this endpoint');

  const jti = payload.jti;
  if (typeof jti !== 'string' || !JTI_PATTERN.test(jti)) {
    throw new JwsError('missing-jti', 'the jti claim must be 1-128 printable ASCII characters');
  }
  return { jti, expiresAt: new Date(exp * 1000) };
}

const JTI_PATTERN = /^[\x20-\x7e]{1,128}$/;

function checkKeyFits(alg: JwsAlgorithm, key: KeyObject): void {
  const spec = ALGORITHMS[alg].key;
  const details = key.asymmetricKeyDetails ?? {};
  const fits =
    spec.type === 'ec'
      ? key.asymmetricKeyType === 'ec' && details.namedCurve === spec.curve
      : key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= spec.minBits;
  if (!fits) throw new JwsError('key-mismatch', `${alg} needs ${ALGORITHMS[alg].describe}, got ${describeKey(key)}`);
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') return `an EC ${details.namedCurve ?? 'unknown curve'} key`;
  if (key.asymmetricKeyType === 'rsa') return `an RSA ${details.modulusLength ?? '?'}-bit key`;
  return key.asymmetricKeyType ? `an ${key.asymmetricKeyType} key` : `a ${key.type} key`;
}

/** A verification's answer; false for one that throws (a key of the wrong type). Its error is discarded: stackless. */
function safeVerify(check: () => boolean): boolean {
  try {
    return stackless(check);
  } catch {
    return false;
  }
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Strict base64url (RFC 7515 §2: no padding). Node's decoder silently skips bad characters and ignores
 * non-zero trailing bits, so the result is re-encoded and compared: one token has exactly one spelling.
 */
function fromBase64Url(part: string, what: string): Buffer {
  const bytes = Buffer.from(part, 'base64url');
  if (!BASE64URL.test(part) || bytes.toString('base64url') !== part) throw new JwsError('malformed', `the ${what} is not valid base64url`);
  return bytes;
}

/** One x5c entry: standard padded base64 (RFC 7515 §4.1.6, NOT base64url) of one DER certificate. */
function decodeX5cEntry(entry: unknown, index: number): Buffer {
  // 4/3 of the byte limit, checked before decoding so an oversized entry costs nothing.
  if (typeof entry !== 'string' || entry.length === 0 || entry.length > Math.ceil(MAX_X5C_CERTIFICATE_BYTES / 3) * 4) {
    throw new JwsError('malformed', `x5c[${index}] must be a base64 string of at most ${MAX_X5C_CERTIFICATE_BYTES} bytes`);
  }
  const der = Buffer.from(entry, 'base64');
  if (!BASE64.test(entry) || der.toString('base64') !== entry) throw new JwsError('malformed', `x5c[${index}] is not standard base64`);
  if (der.length > MAX_X5C_CERTIFICATE_BYTES) {
    throw new JwsError('malformed', `x5c[${index}] is larger than ${MAX_X5C_CERTIFICATE_BYTES} bytes`);
  }
  // Only the outer framing: one SEQUENCE filling the buffer. The caller parses and validates the chain.
  let outer;
  try {
    outer = readTlv(der, 0);
  } catch {
    outer = undefined;
  }
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) throw new JwsError('malformed', `x5c[${index}] is not a DER certificate`);
  return der;
}

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    // Fatal decoding: invalid UTF-8 is refused, not replaced. Duplicate member names: JSON.parse keeps
    // the last one, which RFC 7515 §4 allows.
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch {
    throw new JwsError('malformed', `the ${what} is not valid UTF-8 JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwsError('malformed', `the ${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** A NumericDate claim (seconds since the epoch, RFC 7519 §2), or undefined when absent. */
function numericDate(payload: Record<string, unknown>, claim: string): number | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new JwsError('malformed', `the ${claim} claim must be a number`);
  return value;
}

/** For messages: short, and never echoes a long attacker-chosen string. */
function describeValue(value: unknown): string {
  if (typeof value !== 'string') return value === undefined ? '(missing)' : typeof value;
  return JSON.stringify(value.length > 16 ? `${value.slice(0, 16)}…` : value);
}
