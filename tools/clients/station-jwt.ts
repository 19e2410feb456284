import { constants, KeyObject, sign } from 'node:crypto';
import { JwsAlgorithm } from '../../src/pki/jws';

const SIGNING: Record<JwsAlgorithm, { hash: 'sha256' | 'sha384'; ec: boolean }> = {
  ES256: { hash: 'sha256', ec: true },
  ES384: { hash: 'sha384', ec: true },
  RS256: { hash: 'sha256', ec: false },
};

/**
 * The client side of certificate-authenticated requests: a compact JWS whose `x5c` header carries the certificate
 * chain (leaf first), signed with the leaf's key — what a factory station or a device sends. Written apart from the
 * service's verifier (src/pki/jws.ts) on purpose, so that tests of the verifier do not share its code. Used by the
 * tests and the benchmark.
 */
export function signX5cJwt(input: { alg: JwsAlgorithm; privateKey: KeyObject; chainDer: Buffer[]; payload: Record<string, unknown> }): string {
  const { hash, ec } = SIGNING[input.alg];
  const header = { alg: input.alg, typ: 'JWT', x5c: input.chainDer.map((der) => der.toString('base64')) };
  const signingInput = `${base64UrlJson(header)}.${base64UrlJson(input.payload)}`;
  // JWS wants ECDSA signatures as raw r‖s (RFC 7518 §3.4), not DER.
  const key = ec ? { key: input.privateKey, dsaEncoding: 'ieee-p1363' as const } : { key: input.privateKey, padding: constants.RSA_PKCS1_PADDING };
  return `${signingInput}.${sign(hash, Buffer.from(signingInput, 'ascii'), key).toString('base64url')}`;
}

function base64UrlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
