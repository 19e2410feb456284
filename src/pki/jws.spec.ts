import { createHmac, createSecretKey, generateKeyPairSync, KeyObject, sign, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { signX5cJwt } from '../../tools/clients/station-jwt';
import { checkJwtClaims, decodeX5cJwt, JwsAlgorithm, JwsError, JwsFailure, verifyJwsSignature } from './jws';

let openssl: OpenSslWorkspace;

interface Station {
  privateKey: KeyObject;
  publicKey: KeyObject;
  certDer: Buffer;
}

const KEYS: Record<JwsAlgorithm, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ES384: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
};

/** A key pair from node:crypto and a self-signed certificate for it made by `openssl req -x509`. */
function station(alg: JwsAlgorithm, cn = 'station-1'): Station {
  const { privateKey, publicKey } = KEYS[alg]();
  const id = Math.random().toString(36).slice(2);
  const keyFile = openssl.file(`${id}.key`, privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const result = openssl.run(['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-days', '1']
    .concat(['-outform', 'DER', '-out', `${id}.der`]));
  assert.equal(result.status, 0, result.output);
  return { privateKey, publicKey, certDer: fs.readFileSync(openssl.file(`${id}.der`)) };
}

const stations = {} as Record<JwsAlgorithm, Station>;
const ALGS: JwsAlgorithm[] = ['ES256', 'ES384', 'RS256'];

const NOW = new Date('2030-01-01T00:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const POLICY = { audience: 'https://pki.example.com/exchange', now: NOW, maxLifetimeSeconds: 300, clockSkewSeconds: 30 };

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: 'station-1', aud: POLICY.audience, iat: NOW_S, exp: NOW_S + 120, jti: 'f7c1d2e0-0001', ...extra };
}

function tokenFor(alg: JwsAlgorithm, payload = claims()): string {
  const s = stations[alg];
  return signX5cJwt({ alg, privateKey: s.privateKey, chainDer: [s.certDer], payload });
}

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A token with any header and payload, signed as ES256 by the P-256 station (or with the given signature). */
function craft(header: Record<string, unknown>, payload: unknown = claims(), signature?: string): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  if (signature !== undefined) return `${input}.${signature}`;
  const sig = sign('sha256', Buffer.from(input), { key: stations.ES256.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

function x5c(alg: JwsAlgorithm = 'ES256'): string[] {
  return [stations[alg].certDer.toString('base64')];
}

function expectJwsError(fn: () => unknown, reason: JwsFailure, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof JwsError, `expected a JwsError, got ${String(err)}`);
    assert.equal(err.reason, reason, `reason (message: ${err.message})`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Replaces one of the three parts of a token. */
function withPart(token: string, index: number, part: string): string {
  const parts = token.split('.');
  parts[index] = part;
  return parts.join('.');
}

before(() => {
  openssl = new OpenSslWorkspace();
  for (const alg of ALGS) stations[alg] = station(alg);
});
after(() => openssl.cleanup());

describe('signX5cJwt / decodeX5cJwt / verifyJwsSignature', () => {
  for (const alg of ALGS) {
    it(`round-trips ${alg} with an openssl certificate in x5c`, () => {
      const token = tokenFor(alg);
      const decoded = decodeX5cJwt(token);
      assert.deepEqual(decoded.header, { alg, typ: 'JWT', x5c: x5c(alg) });
      assert.deepEqual(decoded.payload, claims());
      assert.equal(decoded.chain.length, 1);
      assert.ok(decoded.chain[0].equals(stations[alg].certDer));
      assert.equal(decoded.signingInput.toString(), token.split('.').slice(0, 2).join('.'));
      assert.equal(decoded.signature.toString('base64url'), token.split('.')[2]);
      // The way the exchange endpoint uses it: the leaf certificate's key checks the signature.
      const leafKey = new X509Certificate(decoded.chain[0]).publicKey;
      verifyJwsSignature(token, leafKey);
      verifyJwsSignature(token, stations[alg].publicKey);
      assert.deepEqual(checkJwtClaims(decoded.payload, POLICY), { jti: 'f7c1d2e0-0001', expiresAt: new Date((NOW_S + 120) * 1000) });
    });
  }

  it('ECDSA signatures are raw r‖s of exactly 64 / 96 bytes', () => {
    assert.equal(decodeX5cJwt(tokenFor('ES256')).signature.length, 64);
    assert.equal(decodeX5cJwt(tokenFor('ES384')).signature.length, 96);
    assert.equal(decodeX5cJwt(tokenFor('RS256')).signature.length, 256);
  });

  it('keeps a chain of up to 4 certificates, leaf first', () => {
    const chainDer = [stations.ES256.certDer, stations.ES384.certDer, stations.RS256.certDer, stations.ES256.certDer];
    const token = signX5cJwt({ alg: 'ES256', privateKey: stations.ES256.privateKey, chainDer, payload: claims() });
    const decoded = decodeX5cJwt(token);
    assert.deepEqual(decoded.chain, chainDer);
    verifyJwsSignature(token, stations.ES256.publicKey);
  });

});

describe('decodeX5cJwt refuses', () => {
  it('tokens longer than 16384 characters', () => {
    const token = tokenFor('ES256', claims({ pad: 'x'.repeat(16384) }));
    expectJwsError(() => decodeX5cJwt(token), 'malformed', /16384/);
    // Just under the limit is fine.
    const base = tokenFor('ES256', claims({ pad: '' })).length;
    const fits = tokenFor('ES256', claims({ pad: 'x'.repeat(Math.floor(((16384 - base) * 3) / 4) - 2) }));
    assert.ok(fits.length <= 16384 && fits.length > 16300, String(fits.length));
    decodeX5cJwt(fits);
  });

  it('anything but exactly three parts', () => {
    const token = tokenFor('ES256');
    expectJwsError(() => decodeX5cJwt(token.split('.').slice(0, 2).join('.')), 'malformed', /three/);
    expectJwsError(() => decodeX5cJwt(`${token}.`), 'malformed', /three/);
    expectJwsError(() => decodeX5cJwt(''), 'malformed');
    expectJwsError(() => decodeX5cJwt(42 as unknown as string), 'malformed');
  });

  it('anything but strict unpadded base64url', () => {
    const token = tokenFor('ES256');
    const [header, payload, signature] = token.split('.');
    expectJwsError(() => decodeX5cJwt(`${header}=.${payload}.${signature}`), 'malformed', /header/);
    expectJwsError(() => decodeX5cJwt(`${header}.${payload.replace(/_/g, '/').replace(/-/g, '+')}+/.${signature}`), 'malformed', /payload/);
    expectJwsError(() => decodeX5cJwt(`${header}.${payload}.${signature} `), 'malformed', /signature/);
    expectJwsError(() => decodeX5cJwt(`${header}.${payload}.${signature.slice(0, 10)}!${signature.slice(10)}`), 'malformed');
    // Node decodes non-zero trailing bits to the same bytes; only the canonical spelling is accepted.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sloppy = signature.slice(0, -1) + alphabet[alphabet.indexOf(signature.at(-1)!) + 1];
    assert.deepEqual(Buffer.from(sloppy, 'base64url'), Buffer.from(signature, 'base64url'));
    expectJwsError(() => decodeX5cJwt(withPart(token, 2, sloppy)), 'malformed', /signature/);
  });

  it('a header or payload that is not a UTF-8 JSON object', () => {
    const token = tokenFor('ES256');
    for (const bad of ['not json', '[1,2]', '"string"', 'null', '42']) {
      expectJwsError(() => decodeX5cJwt(withPart(token, 1, b64url(bad))), 'malformed', /payload/);
      expectJwsError(() => decodeX5cJwt(withPart(token, 0, b64url(bad))), 'malformed', /header/);
    }
    const invalidUtf8 = Buffer.concat([Buffer.from('{"sub":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]).toString('base64url');
    expectJwsError(() => decodeX5cJwt(withPart(token, 1, invalidUtf8)), 'malformed', /UTF-8/);
  });

  it('alg none, HMAC and anything else not on the list', () => {
    const noneToken = `${b64url({ alg: 'none', x5c: x5c() })}.${b64url(claims())}.`;
    expectJwsError(() => decodeX5cJwt(noneToken), 'unsupported-algorithm', /none/);
    expectJwsError(() => verifyJwsSignature(noneToken, stations.ES256.publicKey), 'unsupported-algorithm');
    for (const alg of ['HS256', 'PS256', 'EdDSA', 'es256', 'ES512', 'RS384', '', 'toString', 256, null]) {
      expectJwsError(() => decodeX5cJwt(craft({ alg, x5c: x5c() })), 'unsupported-algorithm');
    }
    expectJwsError(() => decodeX5cJwt(craft({ x5c: x5c() })), 'unsupported-algorithm', /missing/);
  });

  it('an HS256 token keyed with the public key (algorithm confusion)', () => {
    const publicPem = stations.RS256.publicKey.export({ format: 'pem', type: 'spki' });
    const input = `${b64url({ alg: 'HS256', x5c: x5c('RS256') })}.${b64url(claims())}`;
    const token = `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
    expectJwsError(() => verifyJwsSignature(token, stations.RS256.publicKey), 'unsupported-algorithm');
    expectJwsError(() => verifyJwsSignature(craft({ alg: 'ES256', x5c: x5c() }), createSecretKey(Buffer.from(publicPem))), 'key-mismatch');
  });

  it('a crit header', () => {
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: x5c(), crit: ['exp'], exp: 1 })), 'malformed', /crit/);
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: x5c(), crit: [] })), 'malformed', /crit/);
  });

  it('a typ that is not a string', () => {
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: x5c(), typ: 1 })), 'malformed', /typ/);
    assert.equal(decodeX5cJwt(craft({ alg: 'ES256', x5c: x5c() })).header.typ, undefined);
  });

  it('an empty signature', () => {
    expectJwsError(() => decodeX5cJwt(`${b64url({ alg: 'ES256', x5c: x5c() })}.${b64url(claims())}.`), 'malformed', /empty/);
  });

  it('a missing or empty x5c', () => {
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256' })), 'missing-x5c');
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: [] })), 'missing-x5c');
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: x5c()[0] })), 'missing-x5c');
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: null })), 'missing-x5c');
  });

  it('more than 4 certificates', () => {
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: Array(5).fill(x5c()[0]) })), 'malformed', /at most 4/);
  });

  it('base64url in x5c (RFC 7515 §4.1.6 says standard base64)', () => {
    // Find a certificate whose base64 has + or /, so that the base64url spelling differs.
    let der = stations.ES256.certDer;
    for (let i = 0; !/[+/]/.test(der.toString('base64')); i++) der = station('ES256', `station-b64-${i}`).certDer;
    expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: [der.toString('base64url')] })), 'malformed', /x5c\[0\].*base64/);
    // And a certificate without padding characters is refused too.
    const padded = der.toString('base64');
    if (padded.endsWith('=')) {
      expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: [padded.replace(/=+$/, '')] })), 'malformed');
    }
    decodeX5cJwt(craft({ alg: 'ES256', x5c: [padded] }));
  });

  it('x5c entries that are not strings, not base64, too big or not DER', () => {
    const cert = x5c()[0];
    const big = Buffer.alloc(8193);
    big[0] = 0x30;
    big[1] = 0x82;
    big.writeUInt16BE(8189, 2);
    const almost = Buffer.from(big.subarray(0, 8192));
    almost.writeUInt16BE(8188, 2);
    for (const [entry, message] of [
      [42, /x5c\[1\]/],
      ['', /x5c\[1\]/],
      [`${cert.slice(0, 20)} ${cert.slice(20)}`, /base64/],
      [`${cert}\n`, /base64/],
      [big.toString('base64'), /8192/],
      ['A'.repeat(10928), /8192/],
      [Buffer.from('not a certificate').toString('base64'), /DER/],
      [Buffer.concat([stations.ES256.certDer, Buffer.from([0])]).toString('base64'), /DER/],
      [stations.ES256.certDer.subarray(0, 100).toString('base64'), /DER/],
    ] as const) {
      expectJwsError(() => decodeX5cJwt(craft({ alg: 'ES256', x5c: [cert, entry] })), 'malformed', message);
    }
    // 8192 bytes is still allowed by the decoder (the caller's certificate parsing judges the content).
    assert.equal(decodeX5cJwt(craft({ alg: 'ES256', x5c: [cert, almost.toString('base64')] })).chain[1].length, 8192);
  });
});

describe('verifyJwsSignature refuses', () => {
  it('a tampered payload', () => {
    for (const alg of ALGS) {
      const token = tokenFor(alg);
      const tampered = withPart(token, 1, b64url(claims({ sub: 'someone-else' })));
      expectJwsError(() => verifyJwsSignature(tampered, stations[alg].publicKey), 'bad-signature');
    }
  });

  it('a tampered header', () => {
    const token = tokenFor('ES256');
    const tampered = withPart(token, 0, b64url({ alg: 'ES256', typ: 'JWT', x5c: x5c('ES384') }));
    expectJwsError(() => verifyJwsSignature(tampered, stations.ES256.publicKey), 'bad-signature');
  });

  it('a signature made by another key of the same kind', () => {
    for (const alg of ALGS) {
      const other = KEYS[alg]();
      const token = signX5cJwt({ alg, privateKey: other.privateKey, chainDer: [stations[alg].certDer], payload: claims() });
      verifyJwsSignature(token, other.publicKey);
      expectJwsError(() => verifyJwsSignature(token, new X509Certificate(decodeX5cJwt(token).chain[0]).publicKey), 'bad-signature');
    }
  });

  it('an ECDSA signature in DER form or of the wrong length', () => {
    const token = tokenFor('ES256');
    const input = token.split('.').slice(0, 2).join('.');
    const der = sign('sha256', Buffer.from(input), stations.ES256.privateKey);
    expectJwsError(() => verifyJwsSignature(withPart(token, 2, der.toString('base64url')), stations.ES256.publicKey), 'bad-signature');
    const raw = decodeX5cJwt(token).signature;
    for (const sig of [raw.subarray(0, 63), Buffer.concat([raw, Buffer.from([0])]), Buffer.concat([Buffer.from([0]), raw])]) {
      expectJwsError(() => verifyJwsSignature(withPart(token, 2, sig.toString('base64url')), stations.ES256.publicKey), 'bad-signature');
    }
    expectJwsError(() => verifyJwsSignature(withPart(token, 2, Buffer.alloc(64).toString('base64url')), stations.ES256.publicKey), 'bad-signature');
  });

  it('an RSA signature of the wrong length', () => {
    const token = tokenFor('RS256');
    const sig = decodeX5cJwt(token).signature;
    expectJwsError(() => verifyJwsSignature(withPart(token, 2, sig.subarray(1).toString('base64url')), stations.RS256.publicKey), 'bad-signature');
    expectJwsError(
      () => verifyJwsSignature(withPart(token, 2, Buffer.concat([Buffer.from([0]), sig]).toString('base64url')), stations.RS256.publicKey),
      'bad-signature',
    );
  });

  it('an ES384 header with a P-256 key (algorithm confusion)', () => {
    const input = `${b64url({ alg: 'ES384', x5c: x5c('ES256') })}.${b64url(claims())}`;
    const sig = sign('sha384', Buffer.from(input), { key: stations.ES256.privateKey, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${sig.toString('base64url')}`;
    expectJwsError(() => verifyJwsSignature(token, stations.ES256.publicKey), 'key-mismatch', /ES384 needs an EC P-384 key, got an EC prime256v1 key/);
  });

  it('any other algorithm and key pairing', () => {
    const mismatches: [JwsAlgorithm, KeyObject][] = [
      ['ES256', stations.ES384.publicKey],
      ['ES256', stations.RS256.publicKey],
      ['ES384', stations.RS256.publicKey],
      ['RS256', stations.ES256.publicKey],
      ['RS256', generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey],
      ['RS256', generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey],
      ['ES256', generateKeyPairSync('ed25519').publicKey],
      ['ES256', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey],
      ['ES384', generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey],
    ];
    for (const [alg, key] of mismatches) {
      expectJwsError(() => verifyJwsSignature(tokenFor(alg), key), 'key-mismatch', new RegExp(`^${alg} needs`));
    }
  });

  it('checks structure before the signature', () => {
    expectJwsError(() => verifyJwsSignature('a.b', stations.ES256.publicKey), 'malformed');
    expectJwsError(() => verifyJwsSignature(craft({ alg: 'ES256' }), stations.ES256.publicKey), 'missing-x5c');
  });
});

describe('checkJwtClaims', () => {
  const check = (extra: Record<string, unknown>, policy: Partial<typeof POLICY> = {}) => checkJwtClaims(claims(extra), { ...POLICY, ...policy });

  it('returns jti and expiry', () => {
    assert.deepEqual(check({ jti: 'abc', exp: NOW_S + 60.5 }), { jti: 'abc', expiresAt: new Date((NOW_S + 60.5) * 1000) });
  });

  it('requires a numeric exp', () => {
    for (const exp of [undefined, '1893456120', null, Infinity, NaN, [NOW_S + 60]]) {
      expectJwsError(() => check({ exp }), 'malformed', /exp/);
    }
  });

  it('expired: exp at or before now - skew', () => {
    expectJwsError(() => check({ exp: NOW_S - 30 }), 'expired');
    expectJwsError(() => check({ exp: NOW_S - 3600 }), 'expired');
    check({ exp: NOW_S - 29 });
    expectJwsError(() => check({ exp: NOW_S }, { clockSkewSeconds: 0 }), 'expired');
  });

  it('lifetime-too-long: exp more than maxLifetime + skew ahead', () => {
    check({ exp: NOW_S + 330 });
    expectJwsError(() => check({ exp: NOW_S + 331 }), 'lifetime-too-long', /300 seconds/);
    expectJwsError(() => check({ exp: 1e300 }), 'lifetime-too-long');
  });

  it('not-yet-valid: nbf or iat beyond the skew', () => {
    check({ nbf: NOW_S + 30, iat: NOW_S + 30 });
    expectJwsError(() => check({ nbf: NOW_S + 31 }), 'not-yet-valid', /nbf/);
    expectJwsError(() => check({ iat: NOW_S + 31 }), 'not-yet-valid', /iat/);
    check({ nbf: NOW_S - 100, iat: NOW_S - 100 });
    expectJwsError(() => check({ nbf: 'soon' }), 'malformed', /nbf/);
    expectJwsError(() => check({ iat: null }), 'malformed', /iat/);
  });

  it('wrong-audience: aud must name the audience exactly', () => {
    check({ aud: [`${POLICY.audience}/other`, POLICY.audience] });
    const wrong = [undefined, `${POLICY.audience}/`, POLICY.audience.toUpperCase(), [], ['x'], [1], 42, { [POLICY.audience]: true }];
    for (const aud of wrong) expectJwsError(() => check({ aud }), 'wrong-audience');
  });

  it('missing-jti: a non-empty printable ASCII string of at most 128 characters', () => {
    check({ jti: 'a'.repeat(128) });
    check({ jti: ' !~' });
    for (const jti of [undefined, '', 'a'.repeat(129), 42, ['a'], 'caf\u00e9', 'a\nb', 'a\tb', 'a\x7f']) {
      expectJwsError(() => check({ jti }), 'missing-jti');
    }
  });

  it('refuses an invalid now rather than accepting everything', () => {
    assert.throws(() => check({}, { now: new Date(NaN) }), TypeError);
  });
});
