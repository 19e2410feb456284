import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { AuthoritiesService } from '../../src/authorities/authorities.service';
import { pemEncode } from '../../src/pki/der';
import { pemDecode } from '../../tools/clients/pem';
import { buildCsr } from '../../tools/csr-builder';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, startTestApp, TestApp } from '../support/test-app';

/**
 * Bad input against the two calls that take the most of it, POST /v1/certificates and POST /v1/authorities
 * (plus path ids, routing and content types): every case must be a 4xx problem+json with a stable code,
 * never a 5xx, and never a certificate. SQLite only: none of this depends on the database driver.
 */

/** Ids and CSRs made in `before`, which the cases read when they run. */
interface Fixtures {
  /** The root (pathLength 1) over both intermediates. */
  root: string;
  /** An active intermediate that issues device and server certificates. */
  activeCa: string;
  /** An intermediate that was disabled. */
  disabledCa: string;
  /** A well-formed P-256 CSR made by openssl (CN=bad-input-device). */
  goodCsr: string;
  /** A valid CSR for the active CA's own public key, signed with that key (proof of possession holds). */
  caKeyCsr: string;
}

interface BadInputCase {
  /** The test name: the behaviour, e.g. 'refuses a CSR whose key is RSA-1024'. */
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  path: string | ((f: Fixtures) => string);
  /** Sent as application/json (supertest serialises it). */
  json?: (f: Fixtures) => unknown;
  /** Sent as is, with this Content-Type. */
  raw?: { contentType: string; payload: () => string };
  status: number;
  code: string;
}

const DEVICE_CN = 'bad-input-device';

/** A device certificate request that would be issued; each case breaks one thing. */
const issue = (f: Fixtures, overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  authorityId: f.activeCa,
  csr: f.goodCsr,
  profile: 'device',
  thingName: 'bad-input-0001',
  validityDays: 30,
  ...overrides,
});

/** An intermediate that would be created; each case breaks one thing. */
const authority = (f: Fixtures, overrides: Record<string, unknown> = {}, subject: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'Bad Input Sub CA',
  type: 'intermediate',
  parentId: f.root,
  keySpec: 'EC_P256',
  subject: { commonName: 'Bad Input Sub CA', organization: 'Acme', country: 'US', ...subject },
  ...overrides,
});

function derOf(pem: string): Buffer {
  const der = pemDecode(pem, ['CERTIFICATE REQUEST']);
  assert.ok(der, 'fixture CSR is PEM');
  return der;
}

const CSR = '/v1/certificates';
const CA = '/v1/authorities';
const ONE_HUNDRED_KIB = 100 * 1024;

const CASES: BadInputCase[] = [
  // --- the CSR itself: encoding ---
  { name: 'refuses a csr that is not PEM at all', method: 'POST', path: CSR, json: (f) => issue(f, { csr: 'this is not a certificate request' }), status: 400, code: 'INVALID_CSR' },
  { name: 'refuses a csr that is bare base64 DER without PEM armour', method: 'POST', path: CSR, json: (f) => issue(f, { csr: derOf(f.goodCsr).toString('base64') }), status: 400, code: 'INVALID_CSR' },
  { name: 'refuses a PEM CERTIFICATE REQUEST block of garbage bytes', method: 'POST', path: CSR, json: (f) => issue(f, { csr: pemEncode('CERTIFICATE REQUEST', randomBytes(300)) }), status: 400, code: 'INVALID_CSR' },
  { name: 'refuses a PEM block with the wrong label (CERTIFICATE)', method: 'POST', path: CSR, json: (f) => issue(f, { csr: pemEncode('CERTIFICATE', derOf(f.goodCsr)) }), status: 400, code: 'INVALID_CSR' },
  {
    name: 'refuses a truncated CSR (valid DER cut in half)',
    method: 'POST',
    path: CSR,
    json: (f) => {
      const der = derOf(f.goodCsr);
      return issue(f, { csr: pemEncode('CERTIFICATE REQUEST', der.subarray(0, Math.floor(der.length / 2))) });
    },
    status: 400,
    code: 'INVALID_CSR',
  },
  { name: 'refuses a CSR with bytes trailing its DER', method: 'POST', path: CSR, json: (f) => issue(f, { csr: pemEncode('CERTIFICATE REQUEST', Buffer.concat([derOf(f.goodCsr), Buffer.from([0, 0])])) }), status: 400, code: 'INVALID_CSR' },
  { name: 'refuses a CSR whose signature does not verify', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ commonName: DEVICE_CN, breakSignature: true }) }), status: 400, code: 'CSR_SIGNATURE_INVALID' },
  { name: 'refuses a csr longer than 16 KiB before parsing it', method: 'POST', path: CSR, json: (f) => issue(f, { csr: f.goodCsr + 'A'.repeat(17 * 1024) }), status: 400, code: 'VALIDATION_FAILED' },

  // --- the CSR: key and signature policy ---
  { name: 'refuses a CSR whose key is RSA-1024', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ key: 'rsa:1024', commonName: DEVICE_CN }) }), status: 422, code: 'UNSUPPORTED_KEY' },
  { name: 'refuses a CSR whose key is on EC P-192 (prime192v1)', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ key: 'ec:prime192v1', commonName: DEVICE_CN }) }), status: 422, code: 'UNSUPPORTED_KEY' },
  { name: 'refuses a CSR whose key is on secp256k1', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ key: 'ec:secp256k1', commonName: DEVICE_CN }) }), status: 422, code: 'UNSUPPORTED_KEY' },
  { name: 'refuses a CSR whose key is Ed25519', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ key: 'ed25519', commonName: DEVICE_CN }) }), status: 422, code: 'UNSUPPORTED_KEY' },
  { name: 'refuses an EC P-256 CSR signed with SHA-1', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ hash: 'sha1', commonName: DEVICE_CN }) }), status: 422, code: 'WEAK_SIGNATURE_ALGORITHM' },
  { name: 'refuses an RSA-2048 CSR signed with SHA-1', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ key: 'rsa:2048', hash: 'sha1', commonName: DEVICE_CN }) }), status: 422, code: 'WEAK_SIGNATURE_ALGORITHM' },
  { name: 'refuses a CSR carrying the issuing CA’s own public key', method: 'POST', path: CSR, json: (f) => issue(f, { csr: f.caKeyCsr }), status: 422, code: 'KEY_NOT_ALLOWED' },

  // --- the CSR: subject ---
  { name: 'refuses a CSR whose subject CN contains NUL', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ commonName: 'bad-input\u0000.evil' }) }), status: 422, code: 'INVALID_SUBJECT' },
  { name: 'refuses a CSR whose subject CN contains a newline', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ commonName: 'bad-input\nforged log line' }) }), status: 422, code: 'INVALID_SUBJECT' },
  { name: 'refuses a CSR whose subject CN contains an ANSI escape', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ commonName: '\u001b[31mbad-input' }) }), status: 422, code: 'INVALID_SUBJECT' },
  { name: 'refuses a CSR whose subject CN contains DEL', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ commonName: 'bad-input\u007f' }) }), status: 422, code: 'INVALID_SUBJECT' },
  { name: 'refuses a CSR whose subject CN contains a C1 control (NEL)', method: 'POST', path: CSR, json: (f) => issue(f, { csr: buildCsr({ commonName: 'bad-input\u0085' }) }), status: 422, code: 'INVALID_SUBJECT' },
  {
    name: 'refuses a device CSR with no CN and no thingName',
    method: 'POST',
    path: CSR,
    json: (f) => issue(f, { csr: buildCsr({}), thingName: undefined }),
    status: 422,
    code: 'INVALID_SUBJECT',
  },

  // --- the server profile's SAN rules ---
  { name: 'refuses a wildcard DNS SAN under the server profile', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'server', thingName: undefined, csr: buildCsr({ dnsNames: ['*.example.com'] }) }), status: 422, code: 'SAN_NOT_ALLOWED' },
  { name: 'refuses a wildcard CN under the server profile', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'server', thingName: undefined, csr: buildCsr({ commonName: '*.example.com' }) }), status: 422, code: 'SAN_NOT_ALLOWED' },
  { name: 'refuses a wildcard hidden after a normal DNS SAN under the server profile', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'server', thingName: undefined, csr: buildCsr({ dnsNames: ['api.example.com', '*.Example.COM'] }) }), status: 422, code: 'SAN_NOT_ALLOWED' },
  { name: 'refuses a server CSR that names no host at all', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'server', thingName: undefined, csr: buildCsr({}) }), status: 422, code: 'SAN_NOT_ALLOWED' },

  // --- the rest of the issue request ---
  { name: 'refuses an unknown authority id with 404', method: 'POST', path: CSR, json: (f) => issue(f, { authorityId: randomUUID() }), status: 404, code: 'AUTHORITY_NOT_FOUND' },
  { name: 'refuses to issue from a disabled authority', method: 'POST', path: CSR, json: (f) => issue(f, { authorityId: f.disabledCa }), status: 409, code: 'AUTHORITY_NOT_ACTIVE' },
  { name: 'refuses an unknown profile', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'ca' }), status: 422, code: 'PROFILE_NOT_FOUND' },
  { name: 'refuses a profile named after an Object.prototype property (__proto__)', method: 'POST', path: CSR, json: (f) => issue(f, { profile: '__proto__' }), status: 422, code: 'PROFILE_NOT_FOUND' },
  { name: 'refuses a profile named after an Object.prototype property (constructor)', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'constructor' }), status: 422, code: 'PROFILE_NOT_FOUND' },
  { name: 'refuses validityDays above the device profile maximum (3650)', method: 'POST', path: CSR, json: (f) => issue(f, { validityDays: 3651 }), status: 422, code: 'VALIDITY_EXCEEDS_PROFILE' },
  { name: 'refuses validityDays above the server profile maximum (397)', method: 'POST', path: CSR, json: (f) => issue(f, { profile: 'server', thingName: undefined, validityDays: 398, csr: buildCsr({ dnsNames: ['api.example.com'] }) }), status: 422, code: 'VALIDITY_EXCEEDS_PROFILE' },
  { name: 'refuses validityDays of zero', method: 'POST', path: CSR, json: (f) => issue(f, { validityDays: 0 }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a thingName outside the AWS IoT alphabet', method: 'POST', path: CSR, json: (f) => issue(f, { thingName: 'sensor 1/../x' }), status: 400, code: 'VALIDATION_FAILED' },

  // --- JSON types and unknown fields on the issue request ---
  { name: 'refuses validityDays sent as a string', method: 'POST', path: CSR, json: (f) => issue(f, { validityDays: '365' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses validityDays sent as a fraction', method: 'POST', path: CSR, json: (f) => issue(f, { validityDays: 1.5 }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses csr sent as a number', method: 'POST', path: CSR, json: (f) => issue(f, { csr: 12345 }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses csr sent as an array of lines', method: 'POST', path: CSR, json: (f) => issue(f, { csr: f.goodCsr.split('\n') }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses metadata sent as an array', method: 'POST', path: CSR, json: (f) => issue(f, { metadata: ['batch', 'B-42'] }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses metadata with a non-string value', method: 'POST', path: CSR, json: (f) => issue(f, { metadata: { batch: 42 } }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses metadata with a nested object', method: 'POST', path: CSR, json: (f) => issue(f, { metadata: { batch: { id: 'B-42' } } }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses thingName sent as a number', method: 'POST', path: CSR, json: (f) => issue(f, { thingName: 1 }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses authorityId that is not a UUID', method: 'POST', path: CSR, json: (f) => issue(f, { authorityId: 'root' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an issue request without a csr', method: 'POST', path: CSR, json: (f) => issue(f, { csr: undefined }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an unknown field on the issue request (isCa)', method: 'POST', path: CSR, json: (f) => issue(f, { isCa: true }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an unknown field on the issue request (serial)', method: 'POST', path: CSR, json: (f) => issue(f, { serial: '01' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a JSON array as the issue request body', method: 'POST', path: CSR, json: (f) => [issue(f)], status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses JSON null as the issue request body', method: 'POST', path: CSR, raw: { contentType: 'application/json', payload: () => 'null' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a JSON string as the issue request body', method: 'POST', path: CSR, raw: { contentType: 'application/json', payload: () => '"-----BEGIN CERTIFICATE REQUEST-----"' }, status: 400, code: 'VALIDATION_FAILED' },

  // --- the body as a whole on the issue request ---
  { name: 'refuses a 100 KiB issue request body with 413', method: 'POST', path: CSR, json: (f) => issue(f, { metadata: { pad: 'x'.repeat(ONE_HUNDRED_KIB) } }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'refuses an issue request body that is not valid JSON', method: 'POST', path: CSR, raw: { contentType: 'application/json', payload: () => '{"profile": "device", "csr": ' }, status: 400, code: 'MALFORMED_JSON' },
  { name: 'refuses an empty issue request body sent as JSON', method: 'POST', path: CSR, raw: { contentType: 'application/json', payload: () => '' }, status: 400, code: 'MALFORMED_JSON' },
  { name: 'refuses an issue request sent as text/plain with 415', method: 'POST', path: CSR, raw: { contentType: 'text/plain', payload: () => '{"profile":"device"}' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'refuses an issue request sent as a form with 415', method: 'POST', path: CSR, raw: { contentType: 'application/x-www-form-urlencoded', payload: () => 'profile=device&csr=x' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'refuses a bare PEM CSR posted as application/pkcs10 with 415', method: 'POST', path: CSR, raw: { contentType: 'application/pkcs10', payload: () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },

  // --- POST /v1/authorities: control characters in the JSON subject ---
  { name: 'refuses a CA subject commonName containing NUL', method: 'POST', path: CA, json: (f) => authority(f, {}, { commonName: 'Acme\u0000Root' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject commonName containing a newline', method: 'POST', path: CA, json: (f) => authority(f, {}, { commonName: 'Acme\nRoot' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject organization containing an ANSI escape', method: 'POST', path: CA, json: (f) => authority(f, {}, { organization: 'Acme\u001b[2J' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject organizationalUnit containing a tab', method: 'POST', path: CA, json: (f) => authority(f, {}, { organizationalUnit: 'IoT\tFleet' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject state containing DEL', method: 'POST', path: CA, json: (f) => authority(f, {}, { state: 'California\u007f' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject locality containing a C1 control (NEL)', method: 'POST', path: CA, json: (f) => authority(f, {}, { locality: 'San\u0085Jose' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject country containing NUL', method: 'POST', path: CA, json: (f) => authority(f, {}, { country: 'U\u0000' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA name containing NUL', method: 'POST', path: CA, json: (f) => authority(f, { name: 'Bad\u0000CA' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject commonName with leading spaces', method: 'POST', path: CA, json: (f) => authority(f, {}, { commonName: '  Acme Root' }), status: 422, code: 'INVALID_SUBJECT' },
  { name: 'refuses a CA subject commonName longer than 64 characters', method: 'POST', path: CA, json: (f) => authority(f, {}, { commonName: 'C'.repeat(65) }), status: 400, code: 'VALIDATION_FAILED' },

  // --- POST /v1/authorities: JSON types, unknown fields, domain rules ---
  { name: 'refuses a CA subject sent as a string', method: 'POST', path: CA, json: (f) => authority(f, { subject: 'CN=Acme Root' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject sent as an array', method: 'POST', path: CA, json: (f) => authority(f, { subject: [{ commonName: 'Acme Root' }] }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject sent as null', method: 'POST', path: CA, json: (f) => authority(f, { subject: null }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA request without a subject', method: 'POST', path: CA, json: (f) => authority(f, { subject: undefined }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA subject commonName sent as a number', method: 'POST', path: CA, json: (f) => authority(f, {}, { commonName: 42 }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses CA validityDays sent as a string', method: 'POST', path: CA, json: (f) => authority(f, { validityDays: '3650' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses CA pathLength sent as a boolean', method: 'POST', path: CA, json: (f) => authority(f, { pathLength: true }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an unknown CA keySpec (EC_P192)', method: 'POST', path: CA, json: (f) => authority(f, { keySpec: 'EC_P192' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an unknown CA type', method: 'POST', path: CA, json: (f) => authority(f, { type: 'leaf' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an unknown field on the CA request', method: 'POST', path: CA, json: (f) => authority(f, { privateKeyPem: 'x' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an unknown field inside the CA subject', method: 'POST', path: CA, json: (f) => authority(f, {}, { emailAddress: 'ca@example.com' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses kmsKeyId with the local key backend', method: 'POST', path: CA, json: (f) => authority(f, { kmsKeyId: 'alias/acme' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses the aws-kms key backend when it is not configured', method: 'POST', path: CA, json: (f) => authority(f, { keyBackend: 'aws-kms' }), status: 422, code: 'KEY_BACKEND_NOT_CONFIGURED' },
  { name: 'refuses an intermediate without a parentId', method: 'POST', path: CA, json: (f) => authority(f, { parentId: undefined }), status: 422, code: 'PARENT_AUTHORITY_REQUIRED' },
  { name: 'refuses an intermediate under an unknown parent with 404', method: 'POST', path: CA, json: (f) => authority(f, { parentId: randomUUID() }), status: 404, code: 'AUTHORITY_NOT_FOUND' },
  { name: 'refuses an intermediate under a disabled parent', method: 'POST', path: CA, json: (f) => authority(f, { parentId: f.disabledCa }), status: 409, code: 'AUTHORITY_NOT_ACTIVE' },
  { name: 'refuses an intermediate under a pathLength-0 parent', method: 'POST', path: CA, json: (f) => authority(f, { parentId: f.activeCa }), status: 422, code: 'PATH_LENGTH_EXCEEDED' },
  { name: 'refuses a root with a parentId', method: 'POST', path: CA, json: (f) => authority(f, { type: 'root' }), status: 400, code: 'VALIDATION_FAILED' },

  // --- POST /v1/authorities: the body as a whole ---
  { name: 'refuses a 100 KiB CA request body with 413', method: 'POST', path: CA, json: (f) => authority(f, { name: 'N'.repeat(ONE_HUNDRED_KIB) }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'refuses a CA request body that is not valid JSON', method: 'POST', path: CA, raw: { contentType: 'application/json', payload: () => "{'name': 'single quotes'}" }, status: 400, code: 'MALFORMED_JSON' },
  { name: 'refuses a CA request body with a __proto__ key like any unknown key', method: 'POST', path: CA, raw: { contentType: 'application/json', payload: () => '{"name":"x","__proto__":{"isAdmin":true}}' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CA request sent as text/plain with 415', method: 'POST', path: CA, raw: { contentType: 'text/plain', payload: () => 'name=Acme Root' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },

  // --- path ids and routing ---
  { name: 'refuses an authority id that is not a UUID with 400', method: 'GET', path: `${CA}/not-a-uuid`, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a CRL request for an id that is not a UUID with 400', method: 'GET', path: `${CA}/1%27%20OR%201=1/crl`, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses a revocation for a certificate id that is not a UUID with 400', method: 'POST', path: `${CSR}/not-a-uuid/revoke`, json: () => ({ reason: 'keyCompromise' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'refuses an API key id that is not a UUID with 400', method: 'DELETE', path: '/v1/api-keys/12345', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'answers an unknown route with a 404 problem', method: 'GET', path: '/v1/no-such-thing', status: 404, code: 'NOT_FOUND' },
  { name: 'answers a POST to a misspelt route with a 404 problem', method: 'POST', path: '/v1/certificate', json: (f) => issue(f), status: 404, code: 'NOT_FOUND' },
];

describe('bad input on sqlite', () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const f: Fixtures = { root: '', activeCa: '', disabledCa: '', goodCsr: '', caKeyCsr: '' };
  /** Certificates this suite expects to exist at the end: refused requests must leave none behind. */
  let issuedHere = 0;

  before(async () => {
    t = await startTestApp('sqlite');
    const root = await createAuthority({ name: 'Bad Input Root', type: 'root', subject: { commonName: 'Bad Input Root' }, pathLength: 1 });
    f.root = root.id;
    f.activeCa = (await createAuthority({ name: 'Bad Input Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bad Input Issuing CA' } })).id;
    f.disabledCa = (await createAuthority({ name: 'Bad Input Disabled', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bad Input Disabled CA' } })).id;
    const disabled = await t.http().post(`${CA}/${f.disabledCa}/disable`).set(bearer(t.adminKey));
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    f.goodCsr = ssl.newCsr('ec:P-256', `/CN=${DEVICE_CN}`).csrPem;
    f.caKeyCsr = await csrForAuthorityKey(f.activeCa);
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  it('issues the unbroken request the cases start from (so each refusal is down to the one thing broken)', async () => {
    const res = await t.http().post(CSR).set(bearer(t.adminKey)).send(issue(f));
    assert.equal(res.status, 201, JSON.stringify(res.body));
    issuedHere++;
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const path = typeof c.path === 'function' ? c.path(f) : c.path;
      const method = c.method.toLowerCase() as 'get' | 'post' | 'delete';
      let req = t.http()[method](path).set(bearer(t.adminKey));
      if (c.raw) req = req.set('Content-Type', c.raw.contentType).send(c.raw.payload());
      else if (c.json) req = req.send(c.json(f) as object);
      const res = await req;
      assertProblem(res, c.status, c.code);
    });
  }

  it('issues a CSR asking for CA:TRUE and keyCertSign as CA:FALSE with only digitalSignature and clientAuth', async () => {
    const csr = buildCsr({ commonName: DEVICE_CN, requestCa: true, requestKeyUsages: [KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign, KeyUsageFlags.digitalSignature] });
    const res = await t.http().post(CSR).set(bearer(t.adminKey)).send(issue(f, { csr, thingName: 'wants-to-be-a-ca' }));
    if (res.status !== 201) {
      // Refusing is also acceptable, as a clean 4xx problem.
      assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}: ${JSON.stringify(res.body)}`);
      assert.match(res.headers['content-type'], /^application\/problem\+json/);
      return;
    }
    issuedHere++;
    const text = ssl.text(res.body.certificatePem);
    assert.match(text, /Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.doesNotMatch(text, /CA:TRUE/);
    assert.doesNotMatch(text, /Certificate Sign/);
    assert.doesNotMatch(text, /CRL Sign/);
    assert.match(text, /Key Usage: critical\n\s+Digital Signature\n/);
    assert.match(text, /Extended Key Usage: *\n\s+TLS Web Client Authentication\n/);
  });

  it('issues a server certificate carrying the requested DNS SAN (checked with openssl)', async () => {
    const { csrPem } = ssl.newCsr('ec:P-256', '/CN=api.example.com', ['-addext', 'subjectAltName=DNS:api.example.com,DNS:mqtt.example.com']);
    const res = await t.http().post(CSR).set(bearer(t.adminKey)).send({ authorityId: f.activeCa, csr: csrPem, profile: 'server', validityDays: 90 });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    issuedHere++;
    const text = ssl.text(res.body.certificatePem);
    assert.match(text, /Subject: CN ?= ?api\.example\.com\n/);
    assert.match(text, /X509v3 Subject Alternative Name: *\n\s+DNS:api\.example\.com, DNS:mqtt\.example\.com\n/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, /CA:FALSE/);
  });

  it('leaves no certificate behind for any refused request, and the audit chain still verifies', async () => {
    const list = await t.http().get(CSR).query({ limit: 500 }).set(bearer(t.adminKey));
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, issuedHere, JSON.stringify(list.body.items.map((c: { subject: string }) => c.subject)));
    const authorities = await t.http().get(CA).query({ limit: 500 }).set(bearer(t.adminKey));
    assert.equal(authorities.body.items.length, 3, 'no refused CA request created an authority');
    const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
    assert.equal(verify.status, 200);
    assert.deepEqual({ ok: verify.body.ok, firstBrokenSeq: verify.body.firstBrokenSeq }, { ok: true, firstBrokenSeq: null });
  });

  async function createAuthority(body: Record<string, unknown>): Promise<{ id: string }> {
    const res = await t.http().post(CA).set(bearer(t.adminKey)).send({ keySpec: 'EC_P256', ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  /**
   * A well-formed CSR for the authority's own key, signed by that key through the service's own signer,
   * so proof of possession holds and only the "CA key" rule can refuse it.
   */
  async function csrForAuthorityKey(authorityId: string): Promise<string> {
    const service = t.app.get(AuthoritiesService);
    const { signer } = await service.signingView(await service.get(authorityId));
    assert.equal(signer.algorithm, 'ECDSA_SHA_256');
    const info = new CertificationRequestInfo({
      subject: new Name([
        new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: DEVICE_CN }) })]),
      ]),
      subjectPKInfo: AsnConvert.parse(signer.publicKeySpki(), SubjectPublicKeyInfo),
    });
    const signature = await signer.sign(Buffer.from(AsnConvert.serialize(info)));
    const csr = new CertificationRequest({
      certificationRequestInfo: info,
      signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }),
      signature: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer,
    });
    return pemEncode('CERTIFICATE REQUEST', Buffer.from(AsnConvert.serialize(csr)));
  }
});

/** A 4xx (never a 5xx) RFC 9457 problem with the expected stable code. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function assertProblem(res: { status: number; headers: Record<string, string>; body: any; text: string }, status: number, code: string): void {
  assert.ok(res.status < 500, `server error ${res.status}: ${res.text}`);
  assert.equal(res.status, status, res.text);
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, `content type of ${res.text}`);
  assert.equal(res.body.code, code, res.text);
  assert.equal(res.body.status, status);
  assert.equal(typeof res.body.detail, 'string');
}
