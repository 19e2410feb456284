import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { certificateParts } from '../../src/pki/certificate';
import { OCSP_REQUEST_MAX_BYTES } from '../../src/pki/ocsp';
import { encodeOcspRequest, ocspResponseStatus } from '../../tools/clients/ocsp-client';
import { pemDecode } from '../../tools/clients/pem';
import { OcspSigners } from '../../src/revocation/ocsp-signers';
import { OcspService } from '../../src/revocation/ocsp.service';
import { buildCsr } from '../../tools/csr-builder';
import { createCaPair } from '../support/fixtures';
import { KmsStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { eventually } from '../support/eventually';
import { bearer, binaryBody, drivers, ManualClock, startReplicas, startTestApp, TestApp } from '../support/test-app';

/**
 * The OCSP responder end to end, checked with `openssl ocsp`: statuses, revocation, nonce, GET, malformed and foreign
 * requests, KMS-backed CAs (a constant number of KMS signatures) and delegated signer rotation.
 */

interface Device {
  id: string;
  serial: string;
  certificatePem: string;
  chainPem: string;
  file: string;
}

/** openssl without blocking this process's event loop (the server under test runs in it). */
function opensslAsync(ssl: OpenSslWorkspace, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { cwd: ssl.dir }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ status: code, output: `${stdout}${stderr}` });
    });
  });
}

let fileSeq = 0;
const uniq = (name: string) => `${++fileSeq}-${name}`;

async function issue(t: TestApp, ssl: OpenSslWorkspace, authorityId: string, thingName: string): Promise<Device> {
  const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
    authorityId,
    csr: ssl.newCsr('ec:P-256', `/CN=${thingName}`).csrPem,
    profile: 'device',
    thingName,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { ...res.body, file: ssl.file(uniq(`${thingName}.pem`), res.body.certificatePem) };
}

function postOcsp(t: TestApp, der: Buffer, contentType = 'application/ocsp-request') {
  return t.http().post('/ocsp').set('Content-Type', contentType).send(der).buffer(true).parse(binaryBody);
}

function getOcsp(t: TestApp, path: string) {
  return t.http().get(path).buffer(true).parse(binaryBody);
}

/** `openssl ocsp -resp_text` of a DER response (no network: blocking is fine). */
function respText(ssl: OpenSslWorkspace, der: Buffer): string {
  return ssl.run(['ocsp', '-respin', ssl.file(uniq('resp.der'), der), '-resp_text', '-noverify']).output;
}

/** The request openssl would send, written to a file (`-reqout`). */
function opensslRequest(ssl: OpenSslWorkspace, args: string[]): Buffer {
  const out = ssl.file(uniq('req.der'));
  const result = ssl.run(['ocsp', ...args, '-reqout', out]);
  assert.equal(result.status, 0, result.output);
  return fs.readFileSync(out);
}

/** The delegated signer certificate carried in a response (PEM), from `-resp_text`. */
function signerPem(text: string): string {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  assert.ok(match, `a signer certificate in the response: ${text}`);
  return match[0];
}

function statusLine(output: string, file: string): string {
  const line = output.split('\n').find((l) => l.startsWith(`${file}: `));
  assert.ok(line, `a status line for ${file} in:\n${output}`);
  return line.slice(file.length + 2).trim();
}

for (const { driver, skip } of drivers()) {
  describe(`OCSP responder on ${driver}`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let rootId: string;
    let caId: string;
    let caFile: string;
    let rootFile: string;
    let chainFile: string;
    let url: string;
    const devices: Record<string, Device> = {};

    /** openssl ocsp against the running service, trusting the CA chain; the extra args name the certificates. */
    const ask = (args: string[], issuer = caFile, trust = chainFile) => opensslAsync(ssl, ['ocsp', '-issuer', issuer, ...args, '-url', url, '-CAfile', trust]);

    before(async () => {
      t = await startTestApp(driver);
      url = `${t.baseUrl}/ocsp`;
      const pair = await createCaPair(t);
      rootId = pair.root.id;
      caId = pair.intermediate.id;
      caFile = ssl.file('ca.pem', pair.intermediate.certificatePem);
      rootFile = ssl.file('root.pem', pair.root.certificatePem);
      for (const name of ['dev-1', 'dev-2', 'dev-3']) devices[name] = await issue(t, ssl, caId, name);
      chainFile = ssl.file('chain.pem', devices['dev-1'].chainPem);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('puts the OCSP URL in the AIA of the end-entity and intermediate certificates it issues', () => {
      const ocspUri = `OCSP - URI:${t.config.publicBaseUrl}/ocsp`;
      assert.ok(ssl.text(devices['dev-1'].certificatePem).includes(ocspUri));
      assert.ok(ssl.text(fs.readFileSync(caFile, 'utf8')).includes(ocspUri));
      assert.ok(!ssl.text(fs.readFileSync(rootFile, 'utf8')).includes('OCSP - URI'), 'a root has no issuer to ask');
    });

    it('answers good for a certificate it issued; openssl verifies the signature, the delegation and its nonce', async () => {
      const result = await ask(['-cert', devices['dev-1'].file, '-resp_text']);
      assert.equal(result.status, 0, result.output);
      assert.equal(statusLine(result.output, devices['dev-1'].file), 'good');
      assert.match(result.output, /Response verify OK/);
      assert.doesNotMatch(result.output, /WARNING/);
      assert.match(result.output, /OCSP Nonce:/, 'openssl sent a nonce and got it back');
      const signer = ssl.text(signerPem(result.output));
      assert.match(signer, /OCSP Signing/);
      assert.match(signer, /OCSP No Check/);
      assert.match(signer, /Issuer: CN ?= ?Test Issuing CA/);
      assert.match(signer, /Digital Signature/);
    });

    it('answers revoked, with the reason and time, right after POST /v1/certificates/{id}/revoke (even when it answered good just before)', async () => {
      const device = devices['dev-1'];
      const before = await ask(['-no_nonce', '-cert', device.file]);
      assert.equal(statusLine(before.output, device.file), 'good');
      const revoked = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      for (const nonce of [['-no_nonce'], []]) {
        const result = await ask([...nonce, '-cert', device.file]);
        assert.equal(result.status, 0, result.output);
        assert.equal(statusLine(result.output, device.file), 'revoked');
        assert.match(result.output, /Reason: keyCompromise/);
        const time = /Revocation Time: (.+)/.exec(result.output)![1];
        assert.equal(new Date(time).toISOString(), new Date(revoked.body.revokedAt).toISOString());
        assert.match(result.output, /Response verify OK/);
      }
    });

    it('answers several certificates in one request, and unknown for a serial it never issued', async () => {
      const result = await ask(['-cert', devices['dev-2'].file, '-cert', devices['dev-1'].file, '-serial', '0x0123456789abcdef']);
      assert.equal(result.status, 0, result.output);
      assert.equal(statusLine(result.output, devices['dev-2'].file), 'good');
      assert.equal(statusLine(result.output, devices['dev-1'].file), 'revoked');
      assert.equal(statusLine(result.output, '0x0123456789abcdef'), 'unknown');
      assert.match(result.output, /Response verify OK/);
    });

    it('answers SHA-256 CertIDs', async () => {
      const result = await ask(['-sha256', '-cert', devices['dev-2'].file]);
      assert.equal(statusLine(result.output, devices['dev-2'].file), 'good');
      assert.match(result.output, /Response verify OK/);
    });

    it('answers for an intermediate CA certificate (asked of its root)', async () => {
      const result = await ask(['-cert', caFile], rootFile, rootFile);
      assert.equal(result.status, 0, result.output);
      assert.equal(statusLine(result.output, caFile), 'good');
      assert.match(result.output, /Response verify OK/);
    });

    it('answers GET /ocsp/{base64} with HTTP caching headers, reuses the signed answer, and follows a revocation at once', async () => {
      const device = devices['dev-3'];
      const request = opensslRequest(ssl, ['-no_nonce', '-issuer', caFile, '-cert', device.file]);
      const path = `/ocsp/${encodeURIComponent(request.toString('base64'))}`;
      const first = await getOcsp(t, path);
      assert.equal(first.status, 200);
      assert.equal(first.headers['content-type'], 'application/ocsp-response');
      const maxAge = Number(/max-age=(\d+)/.exec(first.headers['cache-control'])![1]);
      assert.ok(maxAge > 0 && maxAge <= 60, first.headers['cache-control']);
      assert.match(first.headers['cache-control'], /public/);
      assert.ok(first.headers.etag);
      assert.ok(first.headers['last-modified']);
      const verified = ssl.run(['ocsp', '-respin', ssl.file(uniq('resp.der'), first.body as Buffer), '-issuer', caFile, '-cert', device.file, '-no_nonce', '-CAfile', chainFile]);
      assert.equal(statusLine(verified.output, device.file), 'good');
      assert.match(verified.output, /Response verify OK/);

      const second = await getOcsp(t, path);
      assert.deepEqual(second.body, first.body, 'the same signed answer, from the cache');
      assert.equal(second.headers.etag, first.headers.etag);

      assert.equal((await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'superseded' })).status, 200);
      const third = await getOcsp(t, path);
      assert.notDeepEqual(third.body, first.body);
      assert.match(respText(ssl, third.body as Buffer), /Cert Status: revoked[\s\S]*Revocation Reason: superseded/);
      assert.notEqual(third.headers.etag, first.headers.etag);
    });

    it('reads a GET request whose base64 keeps its "/" and "+" unencoded', async () => {
      const caDer = pemDecode(fs.readFileSync(caFile, 'utf8'), ['CERTIFICATE'])!;
      const { subject, subjectPublicKeyInfo } = certificateParts(caDer);
      const serial = Buffer.from(devices['dev-2'].serial, 'hex');
      let request: Buffer;
      do {
        request = encodeOcspRequest([{ hash: 'sha1', issuerName: subject, issuerSpki: subjectPublicKeyInfo, serial }], randomBytes(16));
      } while (!/\/.*\+|\+.*\//.test(request.toString('base64')));
      const res = await getOcsp(t, `/ocsp/${request.toString('base64')}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers['cache-control'], 'no-store', 'an answer with a nonce is for this client only');
      const text = respText(ssl, res.body as Buffer);
      assert.match(text, /Cert Status: good/);
      assert.match(text, /OCSP Nonce/);
    });

    it('answers malformedRequest with HTTP 200 to bodies and paths that are not OCSP requests, of any size', async () => {
      const bodies = [Buffer.from('not an OCSP request'), Buffer.alloc(0), randomBytes(OCSP_REQUEST_MAX_BYTES + 1), Buffer.from([0x30, 0x03, 0x30, 0x01, 0x30])];
      for (const body of bodies) {
        const res = await postOcsp(t, body);
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], 'application/ocsp-response');
        assert.equal(ocspResponseStatus(res.body as Buffer), 1);
        assert.match(respText(ssl, res.body as Buffer), /Responder Error: malformedrequest \(1\)/);
      }
      // Including a path that is not even percent-decodable, and the bare /ocsp/.
      for (const path of ['/ocsp/not%20base64!', '/ocsp/AAAA', '/ocsp/%E0%A4%80', '/ocsp/MA%3D%3D', '/ocsp/%E0%A4%A', '/ocsp/', `/ocsp/${'A'.repeat(10_000)}`]) {
        const res = await getOcsp(t, path);
        assert.equal(res.status, 200, path);
        assert.equal(ocspResponseStatus(res.body as Buffer), 1, path);
        assert.equal(res.headers['cache-control'], 'no-store');
      }
      // A JSON body sent to the responder is no OCSP request either.
      const json = await t.http().post('/ocsp').send({ hello: 'world' }).buffer(true).parse(binaryBody);
      assert.equal(json.status, 200);
      assert.equal(ocspResponseStatus(json.body as Buffer), 1);
    });

    it('answers a body far over the limit at once and closes the connection, without reading it all', async () => {
      const res = await postOcsp(t, randomBytes(4 * 1024 * 1024));
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, 'close');
      assert.equal(ocspResponseStatus(res.body as Buffer), 1);
    });

    it('answers HEAD like GET without a body, echoes a sane X-Request-Id (only), times requests in the HTTP metric, and leaves other methods to the router', async () => {
      const request = opensslRequest(ssl, ['-no_nonce', '-issuer', caFile, '-cert', devices['dev-2'].file]);
      const path = `/ocsp/${encodeURIComponent(request.toString('base64'))}`;
      const get = await getOcsp(t, path).set('X-Request-Id', 'station-7.req:42');
      assert.equal(get.headers['x-request-id'], 'station-7.req:42');
      const head = await t.http().head(path);
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-type'], 'application/ocsp-response');
      assert.equal(head.headers['content-length'], String((get.body as Buffer).length));
      assert.equal(head.headers.etag, get.headers.etag);
      assert.equal((await postOcsp(t, request).set('X-Request-Id', 'not a sane id!')).headers['x-request-id'], undefined, 'an insane id is not echoed');
      assert.equal((await postOcsp(t, request)).headers['x-request-id'], undefined, 'none is made up: the responder logs nothing to correlate');

      const metrics = (await t.http().get('/metrics')).text;
      assert.match(metrics, /fleetpki_http_request_duration_seconds_count\{method="POST",route="\/ocsp",status="200"\} [1-9]/);
      assert.match(metrics, /fleetpki_http_request_duration_seconds_count\{method="GET",route="\/ocsp\/\*",status="200"\} [1-9]/);

      for (const [method, url] of [['put', '/ocsp'], ['delete', '/ocsp/AAAA'], ['post', '/ocsp/AAAA'], ['get', '/ocspx']] as const) {
        const res = await t.http()[method](url);
        assert.equal(res.status, 404, `${method} ${url}`);
        assert.match(res.headers['content-type'], /application\/problem\+json/);
      }
    });

    it('leaves every other route to JSON: application/ocsp-request elsewhere is a 415 problem', async () => {
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).set('Content-Type', 'application/ocsp-request').send(Buffer.from([0x30, 0x00]));
      assert.equal(res.status, 415);
      assert.match(res.headers['content-type'], /application\/problem\+json/);
      assert.equal(res.body.code, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('answers unauthorized when no CertID names one of its authorities', async () => {
      const foreignKey = ssl.file('foreign.key');
      const foreign = ssl.file('foreign.pem');
      const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', foreignKey, '-subj', '/CN=Test Issuing CA', '-days', '1', '-out', foreign]);
      assert.equal(made.status, 0, made.output);
      const result = await ask(['-serial', `0x${devices['dev-2'].serial}`], foreign);
      assert.match(result.output, /Responder Error: unauthorized \(6\)/);
    });

    it('keeps answering for a disabled authority', async () => {
      const other = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Soon disabled', type: 'intermediate', parentId: rootId, subject: { commonName: 'Soon Disabled CA' } });
      assert.equal(other.status, 201);
      const device = await issue(t, ssl, other.body.id, 'dev-disabled');
      assert.equal((await t.http().post(`/v1/authorities/${other.body.id}/disable`).set(bearer(t.adminKey))).status, 200);
      const otherCa = ssl.file(uniq('other-ca.pem'), other.body.certificatePem);
      const result = await ask(['-cert', device.file], otherCa, ssl.file(uniq('other-chain.pem'), device.chainPem));
      assert.equal(result.status, 0, result.output);
      assert.equal(statusLine(result.output, device.file), 'good');
      assert.match(result.output, /Response verify OK/);
    });

    it('answers POST with Cache-Control: no-store', async () => {
      const request = opensslRequest(ssl, ['-no_nonce', '-issuer', caFile, '-cert', devices['dev-2'].file]);
      const res = await postOcsp(t, request);
      assert.equal(res.status, 200);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(ocspResponseStatus(res.body as Buffer), 0);
    });
  });
}

/**
 * A revocation through one replica shows up at once in its own answers, and in the other's within its poll of the
 * revocation counters (OCSP_REVOCATION_POLL_MS), however recently that one answered good from its cache.
 */
for (const { driver, skip } of drivers().filter((d) => d.driver === 'postgres')) {
  describe('OCSP across replicas', { skip }, () => {
    const POLL_MS = 500;
    let replicas: Awaited<ReturnType<typeof startReplicas>>;
    const ssl = new OpenSslWorkspace();
    before(async () => {
      replicas = await startReplicas(driver, { OCSP_REVOCATION_POLL_MS: String(POLL_MS) });
    });
    after(async () => {
      await replicas?.close();
      ssl.cleanup();
    });

    it('answers revoked from replica A at once, and from replica B within its poll, after A revoked a certificate B had answered good', async () => {
      const { a, b } = replicas;
      const { intermediate } = await createCaPair(a);
      const device = await issue(a, ssl, intermediate.id, 'replica-thing');
      const caFile = ssl.file('ca.pem', intermediate.certificatePem);
      const request = opensslRequest(ssl, ['-no_nonce', '-issuer', caFile, '-cert', device.file]);
      const good = [(await postOcsp(b, request)).body as Buffer, (await postOcsp(b, request)).body as Buffer];
      assert.match(respText(ssl, good[0]), /Cert Status: good/);
      assert.deepEqual(good[1], good[0], 'B answers the second time from its cache (ECDSA signatures differ each time)');
      assert.deepEqual((await postOcsp(a, request)).body, (await postOcsp(a, request)).body, 'A answers from its cache too');
      assert.equal((await a.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(a.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      const revokedAt = Date.now();
      const fromA = respText(ssl, (await postOcsp(a, request)).body as Buffer);
      assert.match(fromA, /Cert Status: revoked[\s\S]*Revocation Reason: keyCompromise/);
      let fromB = '';
      await eventually('replica B answers revoked', async () => /Cert Status: revoked/.test((fromB = respText(ssl, (await postOcsp(b, request)).body as Buffer))), 5000, 20);
      assert.match(fromB, /Revocation Reason: keyCompromise/);
      assert.ok(Date.now() - revokedAt <= POLL_MS + 1000, `B followed after ${Date.now() - revokedAt} ms`);
    });
  });
}

/**
 * Pre-signed answers (RFC 5019 style, docs/architecture.md "OCSP"): an answer that is asked for is signed afresh in the
 * background before it stops being served (half its validity), and when the authority's revocation counter moves the
 * kept answers are checked against the database: unchanged ones are kept as they are, the revoked one re-signed.
 */
for (const { driver, skip } of drivers()) {
  describe(`OCSP pre-signed answers on ${driver}`, { skip }, () => {
    const VALIDITY_S = 3600;
    const clock = new ManualClock();
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let a: Device;
    let b: Device;
    let requestA: Buffer;
    let requestB: Buffer;

    before(async () => {
      // The background poll is slowed down: the test runs the refresh itself, at the clock times it chooses.
      t = await startTestApp(driver, { clock, env: { OCSP_RESPONSE_VALIDITY_SECONDS: String(VALIDITY_S), OCSP_REVOCATION_POLL_MS: '60000' } });
      const { intermediate } = await createCaPair(t);
      a = await issue(t, ssl, intermediate.id, 'presigned-a');
      b = await issue(t, ssl, intermediate.id, 'presigned-b');
      const { subject: issuerName, subjectPublicKeyInfo: issuerSpki } = certificateParts(pemDecode(intermediate.certificatePem, ['CERTIFICATE'])!);
      const requestFor = (serial: string) => encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from(serial, 'hex') }]);
      requestA = requestFor(a.serial);
      requestB = requestFor(b.serial);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    const answer = async (request: Buffer) => (await postOcsp(t, request)).body as Buffer;
    const counted = async (cache: string) => {
      const text = (await t.http().get('/metrics')).text;
      const match = new RegExp(`fleetpki_ocsp_responses_total\\{status="successful",cache="${cache}"\\} (\\d+)`).exec(text);
      return match ? Number(match[1]) : 0;
    };

    it('signs an answer that is asked for afresh before it stops being served, so it never has to be signed on request', async () => {
      const first = await answer(requestA);
      assert.deepEqual(await answer(requestA), first, 'kept');
      const missesBefore = await counted('miss');
      const refreshesBefore = await counted('refresh');

      clock.advance(((VALIDITY_S * 3) / 8) * 1000 + 1000);
      assert.deepEqual(await answer(requestA), first, 'still served: more than half of its validity is left');
      await t.app.get(OcspService).refresh();
      const refreshed = await answer(requestA);
      assert.notDeepEqual(refreshed, first, 'signed afresh in the background');
      assert.match(respText(ssl, refreshed), /Cert Status: good/);
      const thisUpdate = new Date(/This Update: (.+)/.exec(respText(ssl, refreshed))![1]);
      assert.ok(Math.abs(thisUpdate.getTime() - clock.now().getTime()) < 2000, `thisUpdate ${thisUpdate.toISOString()} is the refresh time`);
      assert.equal(await counted('refresh'), refreshesBefore + 1);
      assert.equal(await counted('miss'), missesBefore, 'no request had to wait for a signature');
    });

    it('lets an answer nobody asked for lapse instead of signing it again', async () => {
      const first = await answer(requestB);
      clock.advance(((VALIDITY_S * 3) / 8) * 1000 + 1000);
      await t.app.get(OcspService).refresh();
      assert.deepEqual(await answer(requestB), first, 'not asked for since it was signed: not re-signed (and still served)');
      clock.advance((VALIDITY_S / 8) * 1000);
      const missesBefore = await counted('miss');
      assert.notDeepEqual(await answer(requestB), first, 'past half its validity: signed on request');
      assert.equal(await counted('miss'), missesBefore + 1);
    });

    it('on a revocation, re-signs the revoked certificate’s answer and keeps the others as they are', async () => {
      const keptA = await answer(requestA);
      assert.deepEqual(await answer(requestA), keptA);
      const keptB = await answer(requestB);
      assert.match(respText(ssl, keptB), /Cert Status: good/);
      assert.equal((await t.http().post(`/v1/certificates/${b.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      const refreshesBefore = await counted('refresh');
      await t.app.get(OcspService).refresh();
      assert.equal(await counted('refresh'), refreshesBefore + 1, 'only the revoked certificate’s answer was signed again');
      const missesBefore = await counted('miss');
      assert.deepEqual(await answer(requestA), keptA, 'unchanged status: the same signed answer, still served');
      assert.match(respText(ssl, await answer(requestB)), /Cert Status: revoked[\s\S]*Revocation Reason: keyCompromise/);
      assert.equal(await counted('miss'), missesBefore, 'both from memory');
    });
  });
}

describe('OCSP for a KMS-backed CA', () => {
  let kms: KmsStandIn;
  let t: TestApp;
  const ssl = new OpenSslWorkspace();

  before(async () => {
    kms = await new KmsStandIn().start();
    t = await startTestApp('sqlite', { kms });
  });
  after(async () => {
    await t?.close();
    await kms?.stop();
    ssl.cleanup();
  });

  it('answers 50 requests (each with its own nonce, so each signed) with one KMS Sign for the delegated signer', async () => {
    const ca = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'KMS CA', type: 'root', allowLeafIssuance: true, keyBackend: 'aws-kms', subject: { commonName: 'KMS OCSP CA' } });
    assert.equal(ca.status, 201, JSON.stringify(ca.body));
    const device = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: ca.body.id, csr: buildCsr({ commonName: 'kms-thing' }), profile: 'device', thingName: 'kms-thing' });
    assert.equal(device.status, 201, JSON.stringify(device.body));
    const caFile = ssl.file('kms-ca.pem', ca.body.certificatePem);
    const deviceFile = ssl.file('kms-device.pem', device.body.certificatePem);
    const { subject, subjectPublicKeyInfo } = certificateParts(pemDecode(ca.body.certificatePem, ['CERTIFICATE'])!);
    const serial = Buffer.from(device.body.serial, 'hex');

    const signsBefore = kms.calls.get('Sign') ?? 0;
    const requests = Array.from({ length: 50 }, () => encodeOcspRequest([{ hash: 'sha1', issuerName: subject, issuerSpki: subjectPublicKeyInfo, serial }], randomBytes(16)));
    const responses = await Promise.all(requests.map((request) => postOcsp(t, request)));
    for (const res of responses) {
      assert.equal(res.status, 200);
      assert.equal(ocspResponseStatus(res.body as Buffer), 0);
    }
    assert.equal(new Set(responses.map((res) => (res.body as Buffer).toString('base64'))).size, 50, 'fifty distinct signed answers');
    assert.equal((kms.calls.get('Sign') ?? 0) - signsBefore, 1, 'one KMS Sign: the delegated signer certificate');

    // The last one, checked by openssl against its own request (signature, delegation, nonce).
    const last = ssl.run(['ocsp', '-reqin', ssl.file('kms-req.der', requests[49]), '-respin', ssl.file('kms-resp.der', responses[49].body as Buffer), '-CAfile', caFile, '-resp_text']);
    assert.match(last.output, /Response verify OK/);
    assert.match(last.output, /Cert Status: good/);
    const viaOpenssl = await opensslAsync(ssl, ['ocsp', '-issuer', caFile, '-cert', deviceFile, '-url', `${t.baseUrl}/ocsp`, '-CAfile', caFile]);
    assert.equal(statusLine(viaOpenssl.output, deviceFile), 'good');
    assert.equal((kms.calls.get('Sign') ?? 0) - signsBefore, 1);
  });
});

for (const { driver, skip } of drivers()) {
  describe(`OCSP signer rotation on ${driver}`, { skip }, () => {
    const HOURS = 4;
    const clock = new ManualClock();
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let caFile: string;
    let chainFile: string;
    let device: Device;

    before(async () => {
      t = await startTestApp(driver, { clock, env: { OCSP_SIGNER_VALIDITY_HOURS: String(HOURS) } });
      const { intermediate } = await createCaPair(t);
      caFile = ssl.file('ca.pem', intermediate.certificatePem);
      device = await issue(t, ssl, intermediate.id, 'rotating-thing');
      chainFile = ssl.file('chain.pem', device.chainPem);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    /**
     * Asks with openssl at the test clock's time (-attime for the certificates; -validity_period because openssl
     * compares thisUpdate with the real time); answers the signer certificate that signed.
     */
    async function signerNow(): Promise<string> {
      const attime = String(Math.floor(clock.now().getTime() / 1000));
      const result = await opensslAsync(ssl, ['ocsp', '-issuer', caFile, '-cert', device.file, '-url', `${t.baseUrl}/ocsp`, '-CAfile', chainFile, '-attime', attime, '-validity_period', '86400', '-resp_text']);
      assert.equal(statusLine(result.output, device.file), 'good');
      assert.match(result.output, /Response verify OK/);
      return signerPem(result.output);
    }

    it('keeps its signer until less than half of its validity is left, then replaces it (on use, and in the sweep)', async () => {
      const first = await signerNow();
      assert.match(ssl.text(first), new RegExp(`Not After : `));
      clock.advance((HOURS / 2) * 3_600_000 - 10 * 60_000);
      assert.equal(await signerNow(), first, 'more than half left: the same signer');

      clock.advance(20 * 60_000);
      // On use: the due rotation runs in the background while the still-valid signer answers.
      let second = await signerNow();
      for (let i = 0; second === first && i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        second = await signerNow();
      }
      assert.notEqual(second, first, 'a new signer once less than half was left');

      clock.advance((HOURS / 2) * 3_600_000 + 60_000);
      await t.app.get(OcspSigners).sweep();
      const third = await signerNow();
      assert.notEqual(third, second, 'the sweep replaced it before anyone asked');
      assert.notEqual(third, first);

      const audit = await t.http().get('/v1/audit').query({ action: 'ocsp-signer.created', limit: 100 }).set(bearer(t.adminKey));
      assert.equal(audit.status, 200);
      assert.equal(audit.body.items.length, 3, 'each signer certificate is audited');
    });
  });
}
