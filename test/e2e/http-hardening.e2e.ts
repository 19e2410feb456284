import assert from 'node:assert/strict';
import { KeyObject, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { OpenSslWorkspace } from '../support/openssl';
import { rawRequest, RawResponse, rawResponses } from '../support/raw-http';
import { createClaim, deviceToken, stationToken, StationCredentials } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/**
 * The HTTP layer under hostile input (security review, issue 22): JSON nested or spread past its bounds, prototype
 * keys, null for optional fields, refusals made before our handlers (router, HTTP server), security headers, early
 * refusals of streamed uploads on keep-alive connections, and station/device routes authenticating before they
 * read the body. Every refusal is a 4xx problem+json with a stable code, never a 5xx.
 */

/** 3 KB of JSON nested 1,500 levels: enough to overflow class-transformer's recursion. */
const DEEP_ARRAY = '['.repeat(1500) + ']'.repeat(1500);
const DEEP_OBJECT = '{"a":'.repeat(1000) + '1' + '}'.repeat(1000);

function assertProblem(res: { status: number; headers: Record<string, string | string[] | undefined>; text: string }, status: number, code: string): Body {
  assert.ok(res.status < 500, `server error ${res.status}: ${res.text}`);
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `content type of ${res.text}`);
  const body = JSON.parse(res.text) as Body;
  assert.equal(body.code, code, res.text);
  assert.equal(body.status, status);
  assert.equal(typeof body.detail, 'string');
  return body;
}

for (const { driver, skip } of drivers()) {
  describe(`HTTP hardening of request bodies on ${driver}`, { skip }, () => {
    let t: TestApp;
    let station: StationCredentials;
    let claimId: string;
    let deviceCaId: string;
    let device: { certificatePem: string; key: KeyObject };

    before(async () => {
      t = await startTestApp(driver);
      const root = await admin('post', '/v1/authorities', { name: 'H Root', type: 'root', subject: { commonName: 'Hardening Root' } });
      const claimCa = await admin('post', '/v1/authorities', { name: 'H Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Hardening Claims' } });
      const deviceCa = await admin('post', '/v1/authorities', { name: 'H Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Hardening Devices' } });
      deviceCaId = deviceCa.id;
      const made = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      station = made.station;
      claimId = made.claim.id;
      const { csrPem, privateKey } = deviceKeyAndCsr('hardening-device');
      const cert = await admin('post', '/v1/certificates', { authorityId: deviceCa.id, csr: csrPem, profile: 'device', thingName: 'hardening-device' });
      device = { certificatePem: cert.certificatePem, key: privateKey };
    });
    after(async () => {
      await t?.close();
    });

    async function admin(method: 'post' | 'get', path: string, body?: object): Promise<Body> {
      const req = t.http()[method](path).set(bearer(t.adminKey));
      const res = await (body ? req.send(body) : req);
      assert.ok(res.status === 200 || res.status === 201 || res.status === 202, `${method} ${path}: ${res.status} ${res.text}`);
      return res.body;
    }

    function postRaw(path: string, payload: string, headers: Record<string, string> = {}) {
      return t.http().post(path).set({ 'Content-Type': 'application/json', ...headers }).send(payload);
    }

    /** Posts JSON on the agent's (single, keep-alive) connection. */
    function postOn(agent: http.Agent, path: string, body: string): Promise<{ status: number; text: string; connection?: string; reusedSocket: boolean }> {
      const url = new URL(path, t.baseUrl);
      return new Promise((resolve, reject) => {
        const req = http.request({ hostname: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), connection: res.headers.connection, reusedSocket: req.reusedSocket }));
        });
        // The server may answer (and close) before the whole body is written: what matters is the answer.
        req.on('error', (err) => (req.destroyed && !req.writableFinished ? undefined : reject(err)));
        req.end(body);
      });
    }

    describe('JSON nested too deep or spread too wide (was a 500 with a stack trace)', () => {
      const routes = [
        { name: 'the station exchange with a valid station token', path: '/v1/provisioning/exchange', auth: () => ({ Authorization: `Bearer ${stationToken(t, station)}` }) },
        { name: 'the device renewal with a valid device token', path: '/v1/certificates/renew', auth: () => ({ Authorization: `Bearer ${deviceToken(t, device.certificatePem, device.key)}` }) },
        { name: 'API key creation, unauthenticated', path: '/v1/api-keys', auth: () => ({}) },
        { name: 'authority creation as admin', path: '/v1/authorities', auth: () => bearer(t.adminKey) },
        { name: 'fleet audits as admin', path: '/v1/fleet/audits', auth: () => bearer(t.adminKey) },
        { name: 'claim revocation as admin', path: () => `/v1/claims/${claimId}/revoke`, auth: () => bearer(t.adminKey) },
        { name: 'the AWS IoT events target', path: '/v1/iot/events', auth: () => ({}) },
      ];
      for (const route of routes) {
        it(`answers 400 BODY_TOO_DEEP on ${route.name}, for arrays and objects`, async () => {
          const path = typeof route.path === 'function' ? route.path() : route.path;
          assertProblem(await postRaw(path, DEEP_ARRAY, route.auth()), 400, 'BODY_TOO_DEEP');
          assertProblem(await postRaw(path, DEEP_OBJECT, route.auth()), 400, 'BODY_TOO_DEEP');
        });
      }

      it('answers 400 BODY_TOO_WIDE for a body of more than 10,000 values', async () => {
        const wide = JSON.stringify({ name: 'x', role: 'auditor', pad: Array.from({ length: 10_001 }, () => 0) });
        assertProblem(await postRaw('/v1/api-keys', wide, bearer(t.adminKey)), 400, 'BODY_TOO_WIDE');
      });

      it('still takes the deepest legitimate body, an AWS IoT policy document', async () => {
        const document = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: ['*'], Condition: { Bool: { 'iot:Connection.Thing.IsAttached': ['true'] } } }] };
        const res = await t.http().post('/v1/iot/policies').set(bearer(t.adminKey)).send({ name: 'deep-enough', document });
        assert.ok(res.status !== 400 || res.body.code !== 'BODY_TOO_DEEP', res.text);
        assert.ok(res.status < 500, res.text);
      });
    });

    describe('prototype keys are refused like every other unknown key (were dropped silently)', () => {
      for (const key of ['constructor', 'prototype', '__proto__']) {
        it(`refuses "${key}" at the top of a body, inside a nested object, and in a query string`, async () => {
          const top = assertProblem(await postRaw('/v1/fleet/audits', `{"deviceExpiryDays":30,"${key}":{"x":1}}`, bearer(t.adminKey)), 400, 'VALIDATION_FAILED');
          assert.deepEqual(top.errors, [`property ${key} should not exist`]);
          const unknown = assertProblem(await postRaw('/v1/fleet/audits', '{"deviceExpiryDays":30,"other":{"x":1}}', bearer(t.adminKey)), 400, 'VALIDATION_FAILED');
          assert.deepEqual(unknown.errors, ['property other should not exist'], 'the same answer as any unknown key');
          const nested = assertProblem(
            await postRaw('/v1/authorities', `{"name":"P","type":"root","subject":{"commonName":"P","${key}":"x"}}`, bearer(t.adminKey)),
            400,
            'VALIDATION_FAILED',
          );
          assert.deepEqual(nested.errors, [`property subject.${key} should not exist`]);
          const query = await t.http().get(`/v1/certificates?${key}=1`).set(bearer(t.adminKey));
          if (key === '__proto__') assert.ok(query.status === 200 || query.status === 400, query.text);
          else assertProblem(query, 400, 'VALIDATION_FAILED');
        });
      }

      it('started no fleet audit for any of the refused requests', async () => {
        const audits = await admin('get', '/v1/fleet/audits');
        assert.equal(audits.items.length, 0, JSON.stringify(audits.items));
      });
    });

    describe('NUL characters in JSON strings', () => {
      it('refuses a NUL in a string no field check covers (was a 500 on PostgreSQL: a rotation selector’s profile)', async () => {
        const body = { selector: { profile: 'dev\u0000ice' }, reason: 'fuzz', deadline: new Date(Date.now() + 86_400_000).toISOString(), onDeadline: 'report' };
        const res = await t.http().post('/v1/rotations').set(bearer(t.adminKey)).send(body);
        assert.deepEqual(assertProblem(res, 400, 'VALIDATION_FAILED').errors, ['selector.profile must not contain NUL characters']);
      });

      it('refuses a NUL in a query string value', async () => {
        const res = await t.http().get('/v1/rotations?cursor=a%00b').set(bearer(t.adminKey));
        assertProblem(res, 400, 'VALIDATION_FAILED');
      });
    });

    describe('optional fields may be left out, never sent as null (null was used as a number)', () => {
      for (const field of ['deviceExpiryDays', 'caExpiryDays', 'claimExpiryDays', 'claimQuotaFraction', 'policySample']) {
        it(`refuses fleet audit ${field}: null`, async () => {
          const body = assertProblem(await t.http().post('/v1/fleet/audits').set(bearer(t.adminKey)).send({ [field]: null }), 400, 'VALIDATION_FAILED');
          assert.deepEqual(body.errors, [`${field} must not be null`]);
        });
      }

      it('refuses null for optional fields of certificate issuance (thingName, validityDays, metadata)', async () => {
        const { csrPem } = deviceKeyAndCsr('null-device');
        for (const field of ['thingName', 'validityDays', 'metadata']) {
          const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: deviceCaId, csr: csrPem, profile: 'device', [field]: null });
          assert.deepEqual(assertProblem(res, 400, 'VALIDATION_FAILED').errors, [`${field} must not be null`]);
        }
      });

      it('refuses null for optional fields of a claim, nested ones included', async () => {
        const claim = { name: 'N', factory: 'F', claimAuthorityId: randomUUID(), deviceAuthorityId: randomUUID(), maxDevices: 1, notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'n-{serial}' };
        const cases: [object, string][] = [
          [{ ...claim, claimCertificate: { generateKey: true }, iot: null }, 'iot must not be null'],
          [{ ...claim, claimCertificate: { generateKey: true }, serialPattern: null }, 'serialPattern must not be null'],
          [{ ...claim, claimCertificate: { generateKey: true }, iot: { policyName: null } }, 'iot.policyName must not be null'],
          [{ ...claim, claimCertificate: { generateKey: null, csr: 'x' } }, 'claimCertificate.generateKey must not be null'],
        ];
        for (const [body, finding] of cases) {
          const res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send(body);
          assert.ok(assertProblem(res, 400, 'VALIDATION_FAILED').errors.includes(finding), res.text);
        }
      });

      it('still applies the defaults when the fields are left out', async () => {
        const started = await admin('post', '/v1/fleet/audits', {});
        assert.equal(started.parameters.claimQuotaFraction, 0.9);
        assert.equal(started.parameters.deviceExpiryDays, 30);
      });
    });

    describe('station and device routes authenticate before they read the body', () => {
      const routes = [
        { name: 'the exchange', path: '/v1/provisioning/exchange', tokenFor: () => stationToken(t, station), fields: ['deviceSerial', 'csr'] },
        { name: 'renewal', path: '/v1/certificates/renew', tokenFor: () => deviceToken(t, device.certificatePem, device.key), fields: ['csr'] },
        // TPM-attested enrollment (docs/hardware-identity.md): its station tokens name the attestation audience.
        { name: 'the TPM attestation', path: '/v1/provisioning/attestations', tokenFor: () => stationToken(t, station, { aud: `${t.config.publicBaseUrl}/v1/provisioning/attestations` }), fields: ['deviceSerial', 'csr'] },
        {
          name: 'the TPM activation',
          path: `/v1/provisioning/attestations/${randomUUID()}/activation`,
          tokenFor: () => stationToken(t, station, { aud: `${t.config.publicBaseUrl}/v1/provisioning/attestations` }),
          fields: ['secret'],
        },
      ];
      for (const route of routes) {
        it(`answers 401 and nothing about the body to an anonymous caller of ${route.name}`, async () => {
          for (const body of [{}, { deviceSerial: 7, csr: ['x'], extra: true }, { csr: null }]) {
            const res = await t.http().post(route.path).send(body);
            const problem = assertProblem(res, 401, 'UNAUTHENTICATED');
            assert.equal(problem.errors, undefined);
            for (const field of [...route.fields, 'extra']) assert.doesNotMatch(problem.detail, new RegExp(field), 'the answer names no body field');
          }
        });

        it(`answers 401 TOKEN_INVALID to a bad token on ${route.name}, whatever the body`, async () => {
          for (const token of ['x', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.']) {
            const res = await t.http().post(route.path).set('Authorization', `Bearer ${token}`).send({ nonsense: [1, 2, 3] });
            assert.equal(assertProblem(res, 401, 'TOKEN_INVALID').errors, undefined);
          }
        });

        it(`answers 401 to an anonymous caller of ${route.name} before reading the body: not JSON, too deep, too wide, NUL, too large`, async () => {
          const bodies = ['{"csr":', DEEP_ARRAY, DEEP_OBJECT, JSON.stringify({ pad: Array.from({ length: 10_001 }, () => 0) }), '{"csr":"a\\u0000b"}', `{"csr":"${'x'.repeat(70 * 1024)}"}`];
          for (const body of bodies) {
            const problem = assertProblem(await postRaw(route.path, body), 401, 'UNAUTHENTICATED');
            assert.equal(problem.errors, undefined);
          }
          const res = await postRaw(route.path, '{"csr":', { Authorization: 'Bearer x' });
          assertProblem(res, 401, 'TOKEN_INVALID');
          assert.equal(res.headers['www-authenticate'], 'Bearer');
        });

        it(`answers the next request on a keep-alive connection at once after refusing an anonymous caller of ${route.name}`, async () => {
          // A small body is drained and the connection kept; a body past what the server drains (1 MiB), and past
          // BODY_LIMIT_BYTES, gets the 401 with Connection: close.
          for (const body of ['{"csr":', DEEP_ARRAY, `{"csr":"${'x'.repeat(2 * 1024 * 1024)}"}`]) {
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            try {
              const first = await postOn(agent, route.path, body);
              assert.equal(first.status, 401, first.text);
              assert.equal(JSON.parse(first.text).code, 'UNAUTHENTICATED');
              const started = Date.now();
              const next = await Promise.race([
                postOn(agent, route.path, '{}'),
                new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the next request on the connection got no answer within 5 s')), 5_000)),
              ]);
              assert.equal(next.status, 401);
              assert.ok(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms`);
              if (body.length < 1024 * 1024) assert.equal(next.reusedSocket, true, 'a small unread body is drained and the connection kept');
              else assert.equal(first.connection, 'close');
            } finally {
              agent.destroy();
            }
          }
        });

        it(`still refuses the body of an authenticated caller of ${route.name}: not JSON, too deep, NUL, too large`, async () => {
          const auth = () => ({ Authorization: `Bearer ${route.tokenFor()}` });
          assertProblem(await postRaw(route.path, '{"csr":', auth()), 400, 'MALFORMED_JSON');
          assertProblem(await postRaw(route.path, DEEP_ARRAY, auth()), 400, 'BODY_TOO_DEEP');
          assertProblem(await postRaw(route.path, '{"csr":"a\\u0000b"}', auth()), 400, 'VALIDATION_FAILED');
          assertProblem(await postRaw(route.path, `{"csr":"${'x'.repeat(70 * 1024)}"}`, auth()), 413, 'PAYLOAD_TOO_LARGE');
        });

        it(`validates the body of an authenticated caller of ${route.name}`, async () => {
          const res = await t.http().post(route.path).set('Authorization', `Bearer ${route.tokenFor()}`).send({ extra: true });
          const problem = assertProblem(res, 400, 'VALIDATION_FAILED');
          assert.ok(problem.errors.includes('property extra should not exist'), res.text);
        });
      }
    });
  });
}

describe('refusals before our handlers are problem+json (router and HTTP server)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('sqlite');
  });
  after(async () => {
    await t?.close();
  });

  const request = (head: string, body = '') => `${head}\r\nHost: localhost\r\nConnection: close\r\n${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`;

  function assertRawProblem(res: RawResponse | null, status: number, code: string): void {
    assert.ok(res, 'an answer');
    assert.equal(res.status, status, res.text);
    assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/, res.text);
    const body = JSON.parse(res.text) as Body;
    assert.equal(body.code, code);
    assert.equal(body.status, status);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['cache-control'], 'no-store');
  }

  const cases: [name: string, raw: () => string, status: number, code: string][] = [
    ['headers larger than the server’s limit (431, answered by Node before Fastify)', () => request(`GET /healthz HTTP/1.1\r\nX-Padding: ${'a'.repeat(20_000)}`), 431, 'HEADERS_TOO_LARGE'],
    ['a request line that is not HTTP', () => 'GARBAGE\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['an HTTP/1.1 request without a Host header (Node would answer an empty 400)', () => 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['a header line without a colon', () => 'GET /healthz HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n', 400, 'MALFORMED_REQUEST'],
    ['malformed percent-encoding in the path (FST_ERR_BAD_URL)', () => request('GET /v1/authorities/%E0%A4%A HTTP/1.1'), 400, 'INVALID_URL'],
    ['a bare % in the path', () => request('GET /v1/certificates/%zz/revoke HTTP/1.1'), 400, 'INVALID_URL'],
    ['a path parameter longer than the router allows', () => request(`GET /v1/authorities/${'a'.repeat(200)} HTTP/1.1`), 414, 'URI_TOO_LONG'],
    ['an unknown route', () => request('GET /v1/nothing-here HTTP/1.1'), 404, 'NOT_FOUND'],
    ['an unknown method', () => request('PROPFIND /v1/authorities HTTP/1.1'), 404, 'NOT_FOUND'],
    ['a body without a content type', () => request('POST /v1/api-keys HTTP/1.1', '{}'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a body in an unsupported media type', () => request('POST /v1/api-keys HTTP/1.1\r\nContent-Type: application/xml', '<a/>'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a malformed content type', () => request('POST /v1/api-keys HTTP/1.1\r\nContent-Type: ;;;', '{}'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a body larger than BODY_LIMIT_BYTES', () => request('POST /v1/api-keys HTTP/1.1\r\nContent-Type: application/json', `"${'x'.repeat(70_000)}"`), 413, 'PAYLOAD_TOO_LARGE'],
    ['a body that is not JSON', () => request('POST /v1/api-keys HTTP/1.1\r\nContent-Type: application/json', '{"name":'), 400, 'MALFORMED_JSON'],
  ];
  for (const [name, raw, status, code] of cases) {
    it(`answers ${status} ${code} for ${name}`, async () => {
      assertRawProblem(await rawRequest(t.baseUrl, raw()), status, code);
    });
  }

  it('answers a body longer than its Content-Length in order: the request first, then a 400 for the bytes left over', async () => {
    const res = await rawResponses(t.baseUrl, 'POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}garbage\r\n\r\n', { timeoutMs: 3000 });
    assert.deepEqual(res.map((r) => [r.status, JSON.parse(r.text).code]), [[401, 'UNAUTHENTICATED'], [400, 'MALFORMED_REQUEST']]);
    assert.equal(res[1].headers.connection, 'close');
  });

  it('survives a body cut off by the client, and keeps answering', async () => {
    const cut = await rawRequest(t.baseUrl, 'POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na', { timeoutMs: 300, endAfterWrite: true });
    assert.ok(cut === null || cut.status < 500, cut?.text);
    const health = await t.http().get('/healthz');
    assert.equal(health.status, 200);
  });
});

describe('security headers', () => {
  let t: TestApp;
  let authorityId: string;
  let claimCaId: string;
  let deviceCaId: string;
  before(async () => {
    t = await startTestApp('sqlite');
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'S Root', type: 'root', subject: { commonName: 'Headers Root' } });
    authorityId = root.body.id;
    const claims = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'S Claims', type: 'intermediate', parentId: root.body.id, usage: 'claims', subject: { commonName: 'Headers Claims' } });
    claimCaId = claims.body.id;
    const devices = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'S Devices', type: 'intermediate', parentId: root.body.id, subject: { commonName: 'Headers Devices' } });
    deviceCaId = devices.body.id;
  });
  after(async () => {
    await t?.close();
  });

  it('marks a new API key secret no-store and nosniff, without HSTS over plain HTTP', async () => {
    const res = await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: 'headers', role: 'auditor' });
    assert.equal(res.status, 201);
    assert.ok(res.body.key);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['strict-transport-security'], undefined);
  });

  it('marks a generated claim key no-store', async () => {
    const made = await createClaim(t, { claimAuthorityId: claimCaId, deviceAuthorityId: deviceCaId });
    assert.ok(made.claim.claimCertificate.privateKeyPem);
    const res = await t.http().get(`/v1/claims/${made.claim.id}`).set(bearer(t.adminKey));
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  it('marks every API answer and error no-store and nosniff by default', async () => {
    for (const path of ['/v1/authorities', '/v1/no-such-route', '/healthz']) {
      const res = await t.http().get(path).set(bearer(t.adminKey));
      assert.equal(res.headers['cache-control'], 'no-store', path);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
    }
  });

  it('keeps the caching the CRL and the CA certificate routes ask for', async () => {
    const crl = await t.http().get(`/v1/authorities/${authorityId}/crl`);
    assert.equal(crl.status, 200);
    assert.match(crl.headers['cache-control'], /^public, max-age=\d+$/);
    assert.equal(crl.headers['x-content-type-options'], 'nosniff');
    const cert = await t.http().get(`/v1/authorities/${authorityId}/certificate`);
    assert.equal(cert.status, 200);
    assert.equal(cert.headers['cache-control'], 'public, max-age=3600');
    assert.equal(cert.headers['x-content-type-options'], 'nosniff');
  });

  it('sends nosniff from the OCSP binding too, keeping its own caching', async () => {
    const post = await t.http().post('/ocsp').set('Content-Type', 'application/ocsp-request').send(Buffer.from([0x30, 0x00]));
    assert.equal(post.status, 200);
    assert.equal(post.headers['content-type'], 'application/ocsp-response');
    assert.equal(post.headers['x-content-type-options'], 'nosniff');
    assert.equal(post.headers['cache-control'], 'no-store');
  });
});

describe('security headers over the HTTPS listener', () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  let serverCa: string;
  before(async () => {
    const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    assert.equal(made.status, 0, made.output);
    serverCa = fs.readFileSync(ssl.file('server.pem'), 'utf8');
    t = await startTestApp('sqlite', { env: { TLS_CERT_FILE: ssl.file('server.pem'), TLS_KEY_FILE: ssl.file('server.key') } });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  function get(path: string, method = 'GET', body?: Buffer, headers: Record<string, string> = {}): Promise<http.IncomingMessage> {
    const url = new URL(path, t.baseUrl);
    return new Promise((resolve, reject) => {
      const req = https.request({ hostname: url.hostname, port: url.port, path: url.pathname, method, ca: serverCa, headers: { ...bearer(t.adminKey), ...headers } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('sends Strict-Transport-Security, nosniff and no-store on API answers', async () => {
    for (const path of ['/v1/authorities', '/v1/no-such-route']) {
      const res = await get(path);
      assert.equal(res.headers['strict-transport-security'], 'max-age=31536000', path);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(res.headers['cache-control'], 'no-store', path);
    }
  });

  it('sends them from the OCSP binding', async () => {
    const res = await get('/ocsp', 'POST', Buffer.from([0x30, 0x00]), { 'Content-Type': 'application/ocsp-request' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });

  it('sends them with the HTTP server’s own 431, as problem+json', async () => {
    const res = await rawRequest(t.baseUrl, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`, { ca: serverCa });
    assert.ok(res);
    assert.equal(res.status, 431);
    assert.match(res.headers['content-type'], /^application\/problem\+json/);
    assert.equal(JSON.parse(res.text).code, 'HEADERS_TOO_LARGE');
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });
});

describe('allow-list uploads refused early on a keep-alive connection', () => {
  let t: TestApp;
  let claimId: string;
  let auditorKey: string;
  const MAX_SERIALS = 1000;

  before(async () => {
    t = await startTestApp('sqlite', { env: { ALLOWLIST_MAX_SERIALS: String(MAX_SERIALS) } });
    const post = async (path: string, body: object) => (await t.http().post(path).set(bearer(t.adminKey)).send(body)).body;
    const root = await post('/v1/authorities', { name: 'A Root', type: 'root', subject: { commonName: 'Allowlist Root' } });
    const claims = await post('/v1/authorities', { name: 'A Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Allowlist Claims' } });
    const devices = await post('/v1/authorities', { name: 'A Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Allowlist Devices' } });
    claimId = (await createClaim(t, { claimAuthorityId: claims.id, deviceAuthorityId: devices.id })).claim.id;
    auditorKey = (await post('/v1/api-keys', { name: 'auditor', role: 'auditor' })).key;
  });
  after(async () => {
    await t?.close();
  });

  /** A CSV list of `count` serials: 200,000 make about 1.7 MB, more than the server drains before closing. */
  const csv = (count: number, firstLine = 'serial') => `${firstLine}\n${Array.from({ length: count }, (_, i) => `SN${i}`).join('\n')}\n`;

  function send(agent: http.Agent, method: string, path: string, key: string, body?: string): Promise<{ status: number; connection?: string; reusedSocket: boolean }> {
    const url = new URL(path, t.baseUrl);
    return new Promise((resolve, reject) => {
      const req = http.request({ hostname: url.hostname, port: url.port, path: url.pathname, method, agent, headers: { ...bearer(key), ...(body ? { 'Content-Type': 'text/csv' } : {}) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, reusedSocket: req.reusedSocket }));
      });
      // The server may answer (and close) before the whole upload is written: what matters is the answer.
      req.on('error', (err) => (req.destroyed && !req.writableFinished ? undefined : reject(err)));
      req.end(body);
    });
  }

  const cases: [name: string, path: () => string, key: () => string, body: () => string, status: number][] = [
    ['401 (no valid API key)', () => `/v1/claims/${claimId}/allowlist`, () => 'fpk_nope', () => csv(200_000), 401],
    ['403 (an auditor)', () => `/v1/claims/${claimId}/allowlist`, () => auditorKey, () => csv(200_000), 403],
    ['a bad first line', () => `/v1/claims/${claimId}/allowlist`, () => t.adminKey, () => csv(200_000, '"unterminated'), 400],
    ['too many serials', () => `/v1/claims/${claimId}/allowlist`, () => t.adminKey, () => csv(200_000), 400],
    ['too many serials, in a small body', () => `/v1/claims/${claimId}/allowlist`, () => t.adminKey, () => csv(MAX_SERIALS + 1), 400],
    ['an unknown claim', () => `/v1/claims/${randomUUID()}/allowlist`, () => t.adminKey, () => csv(10), 404],
    ['403 with a small body', () => `/v1/claims/${claimId}/allowlist`, () => auditorKey, () => csv(10), 403],
  ];
  for (const [name, path, key, body, status] of cases) {
    it(`answers the next request on the connection at once after ${name}`, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const first = await send(agent, 'PUT', path(), key(), body());
        assert.equal(first.status, status);
        const started = Date.now();
        const next = await Promise.race([
          send(agent, 'GET', '/healthz', t.adminKey),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the next request on the connection got no answer within 5 s')), 5_000)),
        ]);
        assert.equal(next.status, 200);
        assert.ok(Date.now() - started < 2_000, `answered after ${Date.now() - started} ms`);
        // Either the connection was closed with the refusal, or the next request went on it and was answered.
        assert.ok(first.connection === 'close' || next.reusedSocket, JSON.stringify({ first, next }));
      } finally {
        agent.destroy();
      }
    });
  }

  it('keeps the connection for the next request when the rest of a small refused body was drained', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await send(agent, 'PUT', `/v1/claims/${claimId}/allowlist`, auditorKey, csv(10));
      assert.equal(first.status, 403);
      assert.notEqual(first.connection, 'close');
      const next = await send(agent, 'GET', '/healthz', t.adminKey);
      assert.equal(next.reusedSocket, true);
    } finally {
      agent.destroy();
    }
  });
});
