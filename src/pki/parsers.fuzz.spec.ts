import assert from 'node:assert/strict';
import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { buildCsr } from '../../tools/csr-builder';
import { encodeOcspRequest } from '../../tools/clients/ocsp-client';
import { FUZZ_LONG_RUN, fuzzParameters, hostileDer, hostileText } from '../../test/support/fuzz';
import { DomainError } from '../common/errors';
import { parseCsr } from './csr';
import { children, decodeSinglePem, pemEncode, PemError, readTlv } from './der';
import { csrAttributeTypes, csrPemOfEstBody, csrSubjectAttributes } from './est';
import { checkJwtClaims, decodeX5cJwt, JwsError, verifyJwsSignature } from './jws';
import { OcspRequestError, parseOcspRequest } from './ocsp';

/**
 * Fuzzing of the pure parsers every untrusted byte goes through (docs/fuzzing.md): the DER reader, the one CSR parser
 * (also behind EST bodies), PEM framing, the x5c JWT decoder and claim checks, and the OCSP request parser. Inputs
 * are random, mutated from valid samples (so they reach the deep checks), deeply nested or claim huge lengths.
 *
 * The properties: each parser returns, or throws only its own typed error (a DomainError with a 4xx status for the
 * CSR parser, which the API turns into problem+json); never a TypeError/RangeError or a stack overflow, which
 * would surface as a 500; and each call takes less than CALL_BOUND_MS.
 */

/** Cases per property in `npm test`: the six properties take about 3 s together on the CI VM (docs/fuzzing.md). */
const RUNS = 600;
const PROPERTIES = 7;
const CALL_BOUND_MS = 250;
const TEST_TIMEOUT = FUZZ_LONG_RUN ? Infinity : 60_000;

function timed<T>(what: string, call: () => T): T {
  const started = performance.now();
  try {
    return call();
  } finally {
    const took = performance.now() - started;
    assert.ok(took < CALL_BOUND_MS, `${what} took ${took.toFixed(0)} ms (bound ${CALL_BOUND_MS} ms)`);
  }
}

/** Runs `call`; a throw passes only when it is one of `allowed` (and, for a DomainError, a 4xx). */
function onlyThrows(what: string, call: () => unknown, ...allowed: (new (...args: never[]) => Error)[]): void {
  try {
    timed(what, call);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    if (!allowed.some((type) => err instanceof type)) throw new Error(`${what} threw ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    if (err instanceof DomainError) assert.ok(err.status >= 400 && err.status < 500, `${what}: ${err.code} has status ${err.status}`);
  }
}

const pemBody = (pem: string) => decodeSinglePem(pem, ['CERTIFICATE REQUEST']);
const csrSeeds = [
  pemBody(buildCsr({ key: 'ec:P-256', commonName: 'fuzz-device-1', dnsNames: ['a.example.com'] })),
  pemBody(buildCsr({ key: 'ec:P-384', commonName: 'fuzz-device-2' })),
  pemBody(buildCsr({ key: 'rsa:2048', commonName: 'fuzz-device-3' })),
  pemBody(buildCsr({ key: 'ec:P-256' })),
];
const issuer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const issuerSpki = issuer.publicKey.export({ type: 'spki', format: 'der' });
const issuerName = Buffer.from('300f310d300b06035504030c0446757a7a', 'hex');
const ocspSeeds = [
  encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from('0102030405060708', 'hex') }]),
  encodeOcspRequest(
    [
      { hash: 'sha256', issuerName, issuerSpki, serial: Buffer.from('7f', 'hex') },
      { hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from('00ff', 'hex') },
    ],
    Buffer.alloc(16, 7),
  ),
];

describe('fuzzing the DER, CSR, EST, JWT and OCSP parsers', () => {
  it('readTlv and children stay inside the buffer or throw', { timeout: TEST_TIMEOUT }, () => {
    fc.assert(
      fc.property(hostileDer([...csrSeeds, ...ocspSeeds]), (der) => {
        let tlv: ReturnType<typeof readTlv>;
        try {
          tlv = timed('readTlv', () => readTlv(der, 0));
        } catch (err) {
          assert.ok(err instanceof Error && !(err instanceof assert.AssertionError), String(err));
          return;
        }
        assert.ok(tlv.start === 0 && tlv.contentStart <= tlv.end && tlv.end <= der.length, JSON.stringify(tlv));
        try {
          for (const child of timed('children', () => children(der, tlv))) assert.ok(child.start >= tlv.contentStart && child.end <= tlv.end);
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
        }
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('parseCsr answers any DER in a PEM block with a CSR or a 4xx DomainError', { timeout: TEST_TIMEOUT }, () => {
    fc.assert(
      fc.property(hostileDer(csrSeeds), fc.constantFrom('CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'), (der, label) => {
        onlyThrows('parseCsr', () => parseCsr(pemEncode(label, der)), DomainError);
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('parseCsr and decodeSinglePem answer any text with a CSR or a typed error', { timeout: TEST_TIMEOUT }, () => {
    const seedPem = pemEncode('CERTIFICATE REQUEST', csrSeeds[0]);
    const text = fc.oneof(
      hostileText,
      fc.record({ at: fc.nat(), insert: hostileText, cut: fc.nat({ max: 40 }) }).map(({ at, insert, cut }) => {
        const i = at % seedPem.length;
        return seedPem.slice(0, i) + insert + seedPem.slice(i + cut);
      }),
      fc.tuple(hostileText, hostileText).map(([label, body]) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`),
    );
    fc.assert(
      fc.property(text, (pem) => {
        onlyThrows('parseCsr', () => parseCsr(pem), DomainError);
        onlyThrows('decodeSinglePem', () => decodeSinglePem(pem, ['CERTIFICATE REQUEST']), PemError);
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('an EST body (base64 PKCS#10, line breaks, PEM) gives a CSR and its attributes, or a 4xx DomainError', { timeout: TEST_TIMEOUT }, () => {
    const body = fc.oneof(
      fc.record({ der: hostileDer(csrSeeds), width: fc.integer({ min: 0, max: 80 }), crlf: fc.boolean() }).map(({ der, width, crlf }) => {
        const base64 = der.toString('base64');
        return width === 0 ? base64 : (base64.match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join(crlf ? '\r\n' : '\n');
      }),
      hostileText,
      hostileDer(csrSeeds).map((der) => pemEncode('CERTIFICATE REQUEST', der)),
    );
    fc.assert(
      fc.property(body, (text) => {
        onlyThrows(
          'EST enrollment body',
          () => {
            const pem = csrPemOfEstBody(text);
            parseCsr(pem);
            // What EST reads from a CSR parseCsr accepted.
            csrSubjectAttributes(pem);
            csrAttributeTypes(pem);
          },
          DomainError,
        );
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('decodeX5cJwt and verifyJwsSignature answer any token with a decoded token or a JwsError', { timeout: TEST_TIMEOUT }, () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
    const header = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.record(
        {
          alg: fc.oneof(fc.constantFrom('ES256', 'ES384', 'RS256', 'none', 'HS256', 'PS256', '__proto__'), fc.jsonValue({ maxDepth: 1 })),
          x5c: fc.oneof(
            fc.array(hostileDer(csrSeeds).map((der) => der.toString('base64')), { maxLength: 6 }),
            fc.array(fc.oneof(hostileText, fc.jsonValue({ maxDepth: 1 })), { maxLength: 6 }),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          typ: fc.oneof(fc.constant('JWT'), fc.jsonValue({ maxDepth: 1 })),
          crit: fc.jsonValue({ maxDepth: 1 }),
        },
        { requiredKeys: [] },
      ),
    );
    const token = fc.oneof(
      hostileText,
      fc.record({ header, payload: fc.jsonValue({ maxDepth: 3 }), signature: fc.uint8Array({ maxLength: 600 }) }).map(({ header, payload, signature }) => {
        return `${b64url(header)}.${b64url(payload)}.${Buffer.from(signature).toString('base64url')}`;
      }),
      fc.record({ header, payload: fc.jsonValue({ maxDepth: 3 }) }).map(({ header, payload }) => signedWith(key.privateKey, `${b64url(header)}.${b64url(payload)}`)),
      fc.array(hostileText, { maxLength: 5 }).map((parts) => parts.join('.')),
    );
    fc.assert(
      fc.property(token, (jwt) => {
        onlyThrows('decodeX5cJwt', () => decodeX5cJwt(jwt), JwsError);
        onlyThrows('verifyJwsSignature', () => verifyJwsSignature(jwt, key.publicKey), JwsError);
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('checkJwtClaims answers any payload with a jti or a JwsError', { timeout: TEST_TIMEOUT }, () => {
    const now = new Date('2026-12-06T12:00:00Z');
    const seconds = now.getTime() / 1000;
    const claim = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.double(), fc.integer({ min: seconds - 1000, max: seconds + 1000 }), fc.constantFrom(Infinity, -Infinity, NaN, 1e308, -0));
    const payload = fc.record(
      { exp: claim, nbf: claim, iat: claim, aud: fc.oneof(claim, fc.constant('https://pki.example/v1/x'), fc.array(fc.constant('https://pki.example/v1/x'))), jti: fc.oneof(claim, hostileText), sub: claim },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(payload, (claims) => {
        onlyThrows('checkJwtClaims', () => checkJwtClaims(claims as Record<string, unknown>, { audience: 'https://pki.example/v1/x', now, maxLifetimeSeconds: 300, clockSkewSeconds: 60 }), JwsError);
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('parseOcspRequest answers any DER with a request or an OcspRequestError', { timeout: TEST_TIMEOUT }, () => {
    fc.assert(
      fc.property(hostileDer(ocspSeeds), (der) => {
        onlyThrows('parseOcspRequest', () => parseOcspRequest(der), OcspRequestError);
      }),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });
});

function signedWith(key: KeyObject, signingInput: string): string {
  const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}
