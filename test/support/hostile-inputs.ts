import { KeyObject, sign } from 'node:crypto';
import { pemEncode } from '../../src/pki/der';
import { pemDecode } from '../../tools/clients/pem';

/**
 * A fixed corpus of hostile inputs for the fuzz e2e test (test/e2e/fuzz-corpus.e2e.ts): deep and wide JSON, wrong
 * types, nulls, huge strings, prototype keys, bad UTF-8, bad percent-encoding, bad content types, random bytes as
 * CSR and DER, bad JWTs. Deterministic: "random" bytes come from a seeded generator, so every run sends the same.
 */

/** A small seeded generator (mulberry32), for bytes that must be the same on every run. */
export function seededBytes(seed: number, length: number): Buffer {
  let state = seed >>> 0;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

const pem = (label: string, der: Buffer) => pemEncode(label, der);

/** Values put in place of one JSON field: wrong types, nulls, edge numbers, hostile strings, junk CSRs. */
export const HOSTILE_VALUES: [name: string, value: unknown][] = [
  ['null', null],
  ['an empty string', ''],
  ['an empty object', {}],
  ['an empty array', []],
  ['an array of strings', ['a', 'b']],
  ['true', true],
  ['zero', 0],
  ['minus one', -1],
  ['a fraction', 1.5],
  ['1e308', 1e308],
  ['2^53 + 1', 2 ** 53 + 1],
  ['minus 2^63', -9223372036854775808],
  ['a numeric string', '365'],
  ['a NUL character', 'a\u0000b'],
  ['control characters', '\u001b[2J\r\n\u0085\u007f'],
  ['a lone surrogate', 'x\ud800y'],
  ['right-to-left override', 'evil\u202ecod.exe'],
  ['8 KiB of text', 'x'.repeat(8 * 1024)],
  ['40 KiB of text', 'y'.repeat(40 * 1024)],
  ['SQL', "' OR 1=1; DROP TABLE certificates; --"],
  ['a path', '../../../../etc/passwd'],
  ['a template', '{serial}{{7*7}}${7*7}%s%n'],
  ['a regular expression bomb', '(a+)+$'],
  ['a prototype-named string', '__proto__'],
  ['a nested prototype key', JSON.parse('{"constructor":{"prototype":{"polluted":true}}}')],
  ['a deep value', JSON.parse('['.repeat(40) + ']'.repeat(40))],
  ['random bytes as a PEM CSR', pem('CERTIFICATE REQUEST', seededBytes(1, 300))],
  ['random bytes as a PEM certificate', pem('CERTIFICATE', seededBytes(2, 600))],
  ['random bytes as base64', seededBytes(3, 256).toString('base64')],
  ['a DER SEQUENCE claiming 4 GB', pem('CERTIFICATE REQUEST', Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00]))],
  ['a PEM with a bad label', '-----BEGIN \u0000-----\nAAAA\n-----END \u0000-----\n'],
  ['an unterminated PEM', '-----BEGIN CERTIFICATE REQUEST-----\nMIIB'],
  ['a far-future date', '9999-12-31T23:59:59Z'],
  ['a date before 1950', '1900-01-01T00:00:00Z'],
  ['a non-date', '2026-02-30T25:61:61Z'],
  ['a UUID of zeros', '00000000-0000-0000-0000-000000000000'],
];

/** Whole bodies, sent as they are with their content type. */
export function hostileBodies(): { name: string; contentType: string; payload: string | Buffer }[] {
  const json = (name: string, payload: string | Buffer) => ({ name, contentType: 'application/json', payload });
  return [
    json('1,500 nested arrays', '['.repeat(1500) + ']'.repeat(1500)),
    json('1,000 nested objects', '{"a":'.repeat(1000) + '1' + '}'.repeat(1000)),
    json('an array of 20,000 numbers', `[${Array.from({ length: 20_000 }, () => '0').join(',')}]`),
    json('an object of 12,000 keys', `{${Array.from({ length: 12_000 }, (_, i) => `"k${i}":0`).join(',')}}`),
    json('null', 'null'),
    json('a string', '"hello"'),
    json('a number', '42'),
    json('an array', '[]'),
    json('an empty object', '{}'),
    json('an empty body', ''),
    json('whitespace only', ' \n\t '),
    json('truncated JSON', '{"name": "x", "role": '),
    json('single quotes', "{'name': 'x'}"),
    json('a trailing comma', '{"name":"x",}'),
    json('JSON with comments', '{"name":"x" /* hi */}'),
    json('NaN', '{"x": NaN}'),
    json('1e400', '{"validityDays": 1e400, "maxDevices": 1e400, "limit": 1e400}'),
    json('a __proto__ key', '{"__proto__":{"isAdmin":true}}'),
    json('a constructor.prototype key', '{"constructor":{"prototype":{"isAdmin":true}}}'),
    json('a prototype key', '{"prototype":{"isAdmin":true}}'),
    json('an escaped __proto__ key', '{"\\u005f_proto__":{"isAdmin":true}}'),
    json('duplicate keys', '{"name":"a","name":"b","role":"admin","role":"auditor"}'),
    json('a UTF-8 BOM', '\ufeff{"name":"x"}'),
    json('invalid UTF-8 bytes', Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), Buffer.from('"}')])),
    json('a NUL byte outside strings', Buffer.from('{"name":"x"}\u0000')),
    json('random bytes', seededBytes(4, 512)),
    json('60 KiB of string', JSON.stringify({ name: 'z'.repeat(60 * 1024) })),
    json('80 KiB (over BODY_LIMIT_BYTES)', JSON.stringify({ name: 'z'.repeat(80 * 1024) })),
    { name: 'text/plain', contentType: 'text/plain', payload: '{"name":"x"}' },
    { name: 'a form', contentType: 'application/x-www-form-urlencoded', payload: 'name=x&role=admin' },
    { name: 'multipart', contentType: 'multipart/form-data; boundary=x', payload: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n' },
    { name: 'text/csv', contentType: 'text/csv', payload: 'serial\nA1\n' },
    { name: 'UTF-16 JSON', contentType: 'application/json; charset=utf-16', payload: Buffer.from('{"name":"x"}', 'utf16le') },
    { name: 'a malformed content type', contentType: 'application/json;;;=', payload: '{}' },
    { name: 'a content type of spaces', contentType: '   ', payload: '{}' },
    { name: 'application/jsonx', contentType: 'application/jsonx', payload: '{}' },
    { name: 'DER as application/pkcs10', contentType: 'application/pkcs10', payload: seededBytes(5, 200) },
    { name: 'an OCSP request content type', contentType: 'application/ocsp-request', payload: seededBytes(6, 100) },
  ];
}

/** Path segments put in place of a path parameter (already percent-encoded where they need to be). */
export const HOSTILE_SEGMENTS: string[] = [
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
  'FFFFFFFF-FFFF-4FFF-8FFF-FFFFFFFFFFFF',
  '%7B00000000-0000-0000-0000-000000000000%7D',
  '%zz',
  '%E0%A4%A',
  '%00',
  '%C0%AF',
  '..%2F..%2Fetc%2Fpasswd',
  '%27%20OR%201%3D1--',
  '%F0%9F%92%A9',
  'a'.repeat(99),
  'a'.repeat(101),
  '-1',
  '1e309',
];

/** Query strings for list and search routes. */
export const HOSTILE_QUERIES: string[] = [
  'limit=-1',
  'limit=0',
  'limit=1e309',
  'limit=99999999999999999999',
  'limit=1.5',
  'limit=abc',
  'limit=1&limit=2',
  'cursor=%zz',
  'cursor=' + Buffer.from('['.repeat(2000) + ']'.repeat(2000)).toString('base64url'),
  'cursor=' + Buffer.from('{"seq":1e400,"id":null,"issuedAt":{"$gt":""}}').toString('base64url'),
  'cursor=' + seededBytes(7, 200).toString('base64url'),
  'cursor=' + 'A'.repeat(4000),
  'constructor=1',
  '__proto__=1',
  'a[b][c]=1',
  'status=%00',
  'thingName=%E0%A4%A',
  'serial=' + 'f'.repeat(200),
  'expiringBefore=9999-99-99',
  'since=1900-01-01T00:00:00Z&until=1800-01-01T00:00:00Z',
  'format=p12',
  'authorityId=not-a-uuid&claimId=%00',
  'x=' + 'q'.repeat(7000),
];

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/**
 * Bearer tokens a station or device might send that must be refused with a 401: malformed, unsigned, badly signed,
 * carrying junk or the wrong certificate, expired, for another audience, oversized.
 */
export function hostileJwts(input: { certificatePem: string; key: KeyObject; audience: string; otherAudience: string }): [name: string, token: string][] {
  const der = pemDecode(input.certificatePem, ['CERTIFICATE'])!.toString('base64');
  const now = Math.floor(Date.now() / 1000);
  let serial = 0;
  const payload = (overrides: Record<string, unknown> = {}) => ({ aud: input.audience, iat: now, exp: now + 120, jti: `fuzz-${input.audience}-${serial++}`, ...overrides });
  const signed = (header: Record<string, unknown>, body: unknown) => {
    const signingInput = `${b64url(header)}.${b64url(body)}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: input.key, dsaEncoding: 'ieee-p1363' });
    return `${signingInput}.${signature.toString('base64url')}`;
  };
  return [
    ['an empty token', ''],
    ['one segment', 'abc'],
    ['three empty segments', '..'],
    ['alg none', `${b64url({ alg: 'none', x5c: [der] })}.${b64url(payload())}.`],
    ['alg HS256 (a symmetric algorithm)', signed({ alg: 'HS256', x5c: [der] }, payload())],
    ['a header that is not JSON', `${b64url('{{{')}.${b64url(payload())}.AAAA`],
    ['a header that is an array', `${b64url([1, 2])}.${b64url(payload())}.AAAA`],
    ['a payload that is not JSON', `${b64url({ alg: 'ES256', x5c: [der] })}.${b64url('not json')}.AAAA`],
    ['no x5c', signed({ alg: 'ES256' }, payload())],
    ['x5c as a string', signed({ alg: 'ES256', x5c: der }, payload())],
    ['x5c of random DER', signed({ alg: 'ES256', x5c: [seededBytes(8, 400).toString('base64')] }, payload())],
    ['x5c of 200 certificates', signed({ alg: 'ES256', x5c: Array.from({ length: 200 }, () => der) }, payload())],
    ['x5c of invalid base64', signed({ alg: 'ES256', x5c: ['!!!***'] }, payload())],
    ['a deep header', `${b64url('{"alg":"ES256","x5c":' + '['.repeat(3000) + ']'.repeat(3000) + '}')}.${b64url(payload())}.AAAA`],
    ['a signature of junk', `${b64url({ alg: 'ES256', x5c: [der] })}.${b64url(payload())}.${seededBytes(9, 64).toString('base64url')}`],
    ['a signature of the wrong length', `${b64url({ alg: 'ES256', x5c: [der] })}.${b64url(payload())}.AAAA`],
    ['an expired token', signed({ alg: 'ES256', x5c: [der] }, payload({ iat: now - 3600, exp: now - 1800 }))],
    ['a token for another audience', signed({ alg: 'ES256', x5c: [der] }, payload({ aud: input.otherAudience }))],
    ['a token living a year', signed({ alg: 'ES256', x5c: [der] }, payload({ exp: now + 365 * 86400 }))],
    ['a token without jti', signed({ alg: 'ES256', x5c: [der] }, payload({ jti: undefined }))],
    ['a jti of 10 KB', signed({ alg: 'ES256', x5c: [der] }, payload({ jti: 'j'.repeat(10_000) }))],
    ['exp as a string', signed({ alg: 'ES256', x5c: [der] }, payload({ exp: 'tomorrow' }))],
    ['aud as an array of 1,000', signed({ alg: 'ES256', x5c: [der] }, payload({ aud: Array.from({ length: 1000 }, () => input.audience) }))],
    ['a 12 KB token', 'e'.repeat(12_000)],
  ];
}
