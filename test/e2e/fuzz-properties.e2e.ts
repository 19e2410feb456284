import assert from 'node:assert/strict';
import { KeyObject, randomUUID, sign } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApiDocument } from '../../src/openapi';
import { certificateParts } from '../../src/pki/certificate';
import { decodeSinglePem, pemEncode } from '../../src/pki/der';
import { encodeOcspRequest } from '../../tools/clients/ocsp-client';
import { signX5cJwt } from '../../tools/clients/station-jwt';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { answerProblem, describeRequest, FUZZ_LONG_RUN, FUZZ_SEED, fuzzParameters, hostileDer, hostileText, sendWithinBound, Sent } from '../support/fuzz';
import { createClaim, exchangeAudience, StationCredentials } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * Property-based fuzzing of the HTTP API (docs/fuzzing.md), on both drivers, the app in-process over real HTTP:
 * - every JSON body against its DTO, generated from openapi.yaml's request schemas: valid-ish values (fixture ids,
 *   real CSRs, enum members), mixed with wrong types, deep/wide JSON, huge strings, any unicode, extra keys;
 * - the x5c JWT in the Authorization header of the exchange and of renewal, signed with the real key (so the deep
 *   checks run) but with hostile headers, x5c chains and claims, or unsigned junk;
 * - OCSP requests, GET (base64 in the path) and POST (DER), random and mutated from a real request;
 * - allow-list uploads, CSV and JSON;
 * - EST enrollment bodies (base64 PKCS#10) on an authority label (API key) and a claim label (station JWT), and
 *   random labels.
 * Properties: every answer arrives within its bound (test/support/fuzz.ts: 2 s, 20 s for CA key generation), the
 * event loop is never blocked for EVENT_LOOP_BOUND_MS (which would stall every other client), is below 500, every 4xx is problem+json with a stable
 * code (text/plain "<CODE>: …" on EST), and nothing escapes as an unhandled rejection or exception.
 */

/**
 * The longest the event loop may be blocked (the app runs in this process): work longer than this on the request
 * thread, such as generating an RSA key synchronously, stalls every other client, which is a hang for them.
 */
const EVENT_LOOP_BOUND_MS = 500;
/** Cases per property inside `npm test`, chosen by measurement (docs/fuzzing.md): about 25 s per driver in all. */
const RUNS = { bodies: 300, tokens: 150, ocsp: 200, allowlist: 100, est: 150 };
const PROPERTIES = Object.keys(RUNS).length;
const TEST_TIMEOUT = FUZZ_LONG_RUN ? Infinity : 120_000;

type Schema = { $ref?: string; type?: string; format?: string; enum?: unknown[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema; minimum?: number; maximum?: number; maxLength?: number; example?: unknown; oneOf?: Schema[]; allOf?: Schema[]; additionalProperties?: unknown };

interface BodyRoute {
  method: string;
  template: string;
  body: Schema;
  kind: 'api-key' | 'station' | 'device' | 'public';
}

const jsonOf = (value: unknown): string => JSON.stringify(value) ?? 'null';

for (const { driver, skip } of drivers()) {
  describe(`fuzz properties over HTTP on ${driver}`, { skip }, () => {
    let t: TestApp;
    let routes: BodyRoute[];
    let schemas: Record<string, Schema>;
    let ids: Record<string, string>;
    let station: StationCredentials;
    let device: { certificatePem: string; key: KeyObject };
    let csrPool: string[];
    let ocspSeeds: Buffer[];
    const escaped: string[] = [];
    let loopDelay: ReturnType<typeof monitorEventLoopDelay>;
    /** Answers by status, per property: printed, so a run shows how many requests got past validation. */
    let statuses = new Map<number, number>();
    const report = (what: string) => {
      console.log(`fuzz properties on ${driver}: ${what}: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
      statuses = new Map();
    };
    const onRejection = (reason: unknown) => escaped.push(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
    const onException = (err: Error) => escaped.push(`uncaught exception: ${err.stack ?? String(err)}`);

    before(async () => {
      process.on('unhandledRejection', onRejection);
      process.on('uncaughtException', onException);
      loopDelay = monitorEventLoopDelay({ resolution: 10 });
      console.log(`fuzz properties on ${driver}: seed ${FUZZ_SEED} (replay with FUZZ_SEED=${FUZZ_SEED}, or npm run fuzz -- --seed ${FUZZ_SEED})`);
      t = await startTestApp(driver, { env: { ALLOWLIST_MAX_SERIALS: '1000' } });
      const post = async (path: string, body: object) => {
        const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
        assert.equal(res.status, 201, `${path}: ${res.text}`);
        return res.body;
      };
      const root = await post('/v1/authorities', { name: 'Fuzz Root', type: 'root', subject: { commonName: 'Fuzz Root' }, pathLength: 2 });
      const deviceCa = await post('/v1/authorities', { name: 'Fuzz Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Fuzz Devices' } });
      // Routes under /v1/authorities/{id} act on this one: a fuzzed rotation or disable must not stop the others issuing.
      const victimCa = await post('/v1/authorities', { name: 'Fuzz Victim', type: 'intermediate', parentId: root.id, subject: { commonName: 'Fuzz Victim' } });
      const claimCa = await post('/v1/authorities', { name: 'Fuzz Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Fuzz Claims' } });
      const claim = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 100_000 });
      station = claim.station;
      const deviceKey = deviceKeyAndCsr('fuzz-device');
      const deviceCert = await post('/v1/certificates', { authorityId: deviceCa.id, csr: deviceKey.csrPem, profile: 'device', thingName: 'fuzz-device' });
      device = { certificatePem: deviceCert.certificatePem, key: deviceKey.privateKey };
      await post('/v1/est/labels', { label: 'plain', kind: 'claim', claimId: station.claimId });
      await post('/v1/est/labels', { label: 'ops', kind: 'authority', authorityId: deviceCa.id, profile: 'device', validityDays: 30 });
      await post('/v1/est/labels', { label: 'keygen', kind: 'authority', authorityId: deviceCa.id, profile: 'device', validityDays: 30, serverKeygen: true, keySpec: 'RSA_3072' });
      ids = { root: root.id, deviceCa: deviceCa.id, victimCa: victimCa.id, claimCa: claimCa.id, claim: station.claimId, certificate: deviceCert.id };
      csrPool = Array.from({ length: 4 }, (_, i) => deviceKeyAndCsr(`fuzz-pool-${i}`).csrPem);
      const { subject: issuerName, subjectPublicKeyInfo: issuerSpki } = certificateParts(decodeSinglePem(deviceCa.certificatePem, ['CERTIFICATE']));
      const serial = Buffer.from(deviceCert.serial, 'hex');
      ocspSeeds = [
        encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial }]),
        encodeOcspRequest([{ hash: 'sha256', issuerName, issuerSpki, serial }], Buffer.alloc(16, 9)),
      ];
      const document = buildOpenApiDocument(t.app) as OpenAPIObject;
      schemas = (document.components?.schemas ?? {}) as Record<string, Schema>;
      routes = bodyRoutes(document);
    });
    after(async () => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
      loopDelay?.disable();
      await t?.close();
    });

    function bodyRoutes(document: OpenAPIObject): BodyRoute[] {
      const out: BodyRoute[] = [];
      for (const [template, item] of Object.entries(document.paths)) {
        for (const method of ['post', 'put', 'patch'] as const) {
          const operation = item[method];
          const body = (operation?.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content?.['application/json']?.schema;
          if (!operation || !body) continue;
          const kind: BodyRoute['kind'] =
            template === '/v1/provisioning/exchange' ? 'station' : template === '/v1/certificates/renew' ? 'device' : (operation.security as unknown[] | undefined)?.length === 0 ? 'public' : 'api-key';
          out.push({ method: method.toUpperCase(), template, body, kind });
        }
      }
      return out;
    }

    const resolve = (schema: Schema): Schema => (schema.$ref ? resolve(schemas[schema.$ref.split('/').pop()!]) : schema.allOf?.length === 1 ? resolve(schema.allOf[0]) : schema);

    /** Valid-ish values for a schema (fixture ids, real CSRs, enum members, in-range numbers), hostile ones mixed in. */
    function valueOf(raw: Schema, name: string, depth: number): fc.Arbitrary<unknown> {
      const schema = resolve(raw);
      const hostile = fc.oneof(hostileText, fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, -1, 0, 1e308, 2 ** 53 + 1, 1.5, true, [], {}));
      let plausible: fc.Arbitrary<unknown>;
      if (schema.enum?.length) plausible = fc.constantFrom(...schema.enum);
      else if (name === 'csr' || name.endsWith('Csr') || name === 'csrPem') plausible = fc.oneof(fc.constantFrom(...csrPool), hostileDer(csrPool.map((pem) => decodeSinglePem(pem, ['CERTIFICATE REQUEST']))).map((der) => pemEncode('CERTIFICATE REQUEST', der)));
      else if (schema.type === 'object' || schema.properties) {
        if (depth > 3) return fc.constant({});
        const shape: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [key, child] of Object.entries(schema.properties ?? {})) shape[key] = valueOf(child, key, depth + 1);
        plausible = fc
          .tuple(fc.record(shape, { requiredKeys: (schema.required ?? []).filter((key) => key in shape) }), fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), fc.nat({ max: 9 }))
          .map(([record, extra, dice]) => (dice === 0 ? { ...record, ...extra } : record));
      } else if (schema.type === 'array') plausible = fc.array(valueOf(schema.items ?? {}, name, depth + 1), { maxLength: 4 });
      else if (schema.type === 'integer' || schema.type === 'number') {
        const min = Math.ceil(schema.minimum ?? 0);
        plausible = schema.type === 'number' ? fc.double({ min, max: schema.maximum ?? 100_000, noNaN: true }) : fc.integer({ min, max: Math.max(min, Math.floor(Math.min(schema.maximum ?? 100_000, 100_000))) });
      }
      else if (schema.type === 'boolean') plausible = fc.boolean();
      else if (schema.format === 'uuid') plausible = fc.oneof(fc.constantFrom(...Object.values(ids)), fc.uuid());
      else if (schema.format === 'date-time') plausible = fc.date({ min: new Date('1949-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
      else if (name === 'thingNameTemplate') plausible = fc.constantFrom('fuzz-{serial}', '{serial}', 'x');
      else plausible = fc.oneof(typeof schema.example === 'string' ? fc.constant(schema.example) : fc.constant('fuzz'), fc.stringMatching(/^[a-zA-Z0-9 _.:-]{1,40}$/));
      return fc.oneof({ weight: 5, arbitrary: plausible }, { weight: 1, arbitrary: hostile });
    }

    function token(credentials: { certificatePem: string; key: KeyObject }, audience: string, overrides: Record<string, unknown> = {}): string {
      const now = Math.floor(Date.now() / 1000);
      return signX5cJwt({
        alg: 'ES256',
        privateKey: credentials.key,
        chainDer: [decodeSinglePem(credentials.certificatePem, ['CERTIFICATE'])],
        payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID(), ...overrides },
      });
    }

    function authFor(route: BodyRoute): Record<string, string> {
      if (route.kind === 'api-key') return bearer(t.adminKey);
      if (route.kind === 'station') return { Authorization: `Bearer ${token({ certificatePem: station.certificatePem, key: station.privateKey }, exchangeAudience(t))}` };
      if (route.kind === 'device') return { Authorization: `Bearer ${token(device, `${t.config.publicBaseUrl}/v1/certificates/renew`)}` };
      return {};
    }

    const pathOf = (template: string) =>
      template.replace(/\{(\w+)\}/g, (_, name: string) => (template.startsWith('/v1/claims/') ? ids.claim : template.startsWith('/v1/certificates/') ? ids.certificate : template.startsWith('/v1/authorities/') ? ids.victimCa : name === 'name' ? 'fuzz-policy' : randomUUID()));

    /** Sends and checks one request: answered in time, below 500, 4xx as problem+json (or EST text). */
    async function check(request: Sent): Promise<void> {
      let answer: Awaited<ReturnType<typeof sendWithinBound>>;
      loopDelay.reset();
      loopDelay.enable();
      try {
        answer = await sendWithinBound(t.baseUrl, request);
      } catch (err) {
        throw new Error(`${describeRequest(request)}: ${(err as Error).message}`);
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const problem = answerProblem(`${request.method} ${request.path}`, answer.status, answer.contentType, answer.text);
      assert.equal(problem, undefined, `${problem} (request: ${describeRequest(request)})`);
      assert.deepEqual(escaped, []);
      loopDelay.disable();
      const blockedMs = loopDelay.max / 1e6;
      assert.ok(blockedMs < EVENT_LOOP_BOUND_MS, `the event loop was blocked for ${blockedMs.toFixed(0)} ms by ${describeRequest(request)}`);
    }

    it('answers every JSON body, valid-ish or hostile, on every route that takes one', { timeout: TEST_TIMEOUT }, async () => {
      const perRoute = routes.map((route) => valueOf(route.body, '', 0).map((body) => ({ route, body })));
      const shaped = fc.oneof(
        { weight: 6, arbitrary: fc.oneof(...perRoute).map(({ route, body }) => ({ route, payload: jsonOf(body) })) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...routes), fc.jsonValue({ maxDepth: 4 })).map(([route, body]) => ({ route, payload: jsonOf(body) })) },
        {
          weight: 1,
          arbitrary: fc.tuple(fc.constantFrom(...routes), fc.integer({ min: 1, max: 3000 }), fc.constantFrom('[', '{"a":'), fc.boolean()).map(([route, depth, open, closed]) => ({
            route,
            payload: open.repeat(depth) + (closed ? (open === '[' ? ']'.repeat(depth) : `1${'}'.repeat(depth)}`) : ''),
          })),
        },
      );
      await fc.assert(
        fc.asyncProperty(shaped, async ({ route, payload }) => {
          await check({ method: route.method, path: pathOf(route.template), headers: { 'Content-Type': 'application/json', ...authFor(route) }, body: payload });
        }),
        fuzzParameters(RUNS.bodies, PROPERTIES),
      );
      report(`JSON bodies over ${routes.length} routes`);
    });

    it('answers every x5c JWT on the exchange and renewal with 401/4xx problem+json, never a 5xx', { timeout: TEST_TIMEOUT }, async () => {
      const derSeeds = [decodeSinglePem(station.certificatePem, ['CERTIFICATE']), decodeSinglePem(device.certificatePem, ['CERTIFICATE'])];
      const claim = fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileText, fc.integer(), fc.constantFrom(Infinity, 1e308, -1));
      const kind = fc.constantFrom('station' as const, 'device' as const);
      const tokenCase = fc.record({
        kind,
        form: fc.constantFrom('extra-x5c', 'claims', 'header', 'junk', 'swapped'),
        extra: fc.array(hostileDer(derSeeds).map((der) => der.toString('base64')), { minLength: 1, maxLength: 4 }),
        claims: fc.dictionary(fc.constantFrom('aud', 'exp', 'iat', 'nbf', 'jti', 'sub'), claim, { maxKeys: 3 }),
        header: fc.dictionary(fc.constantFrom('alg', 'x5c', 'typ', 'crit', 'kid', 'jku', 'x5u'), fc.oneof(claim, fc.array(hostileText, { maxLength: 3 })), { maxKeys: 3 }),
        junk: fc.oneof(hostileText, fc.array(fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64url')), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('.'))),
      });
      await fc.assert(
        fc.asyncProperty(tokenCase, async (c) => {
          const route = c.kind === 'station' ? '/v1/provisioning/exchange' : '/v1/certificates/renew';
          const holder = c.kind === 'station' ? { certificatePem: station.certificatePem, key: station.privateKey } : device;
          const audience = `${t.config.publicBaseUrl}${route}`;
          const now = Math.floor(Date.now() / 1000);
          const chain = [decodeSinglePem(holder.certificatePem, ['CERTIFICATE'])];
          let jwt: string;
          if (c.form === 'extra-x5c') {
            jwt = signX5cJwt({ alg: 'ES256', privateKey: holder.key, chainDer: [...chain, ...c.extra.map((b) => Buffer.from(b, 'base64'))], payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID() } });
          } else if (c.form === 'claims') {
            jwt = token(holder, audience, c.claims);
          } else if (c.form === 'header') {
            jwt = signedWithHeader(holder.key, { alg: 'ES256', x5c: [chain[0].toString('base64')], ...c.header }, { aud: audience, iat: now, exp: now + 120, jti: randomUUID() });
          } else if (c.form === 'swapped') {
            // The other holder's certificate, this holder's key: a valid structure that must not verify.
            const other = c.kind === 'station' ? device : { certificatePem: station.certificatePem, key: station.privateKey };
            jwt = signX5cJwt({ alg: 'ES256', privateKey: holder.key, chainDer: [decodeSinglePem(other.certificatePem, ['CERTIFICATE'])], payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID() } });
          } else {
            jwt = c.junk;
          }
          const body = c.kind === 'station' ? { deviceSerial: `FUZZ-${randomUUID().slice(0, 8)}`, csr: csrPool[0] } : { csr: csrPool[1] };
          const authorization = /^[\x20-\x7e]*$/.test(jwt) ? `Bearer ${jwt}` : `Bearer ${Buffer.from(jwt).toString('base64url')}`;
          await check({ method: 'POST', path: route, headers: { 'Content-Type': 'application/json', Authorization: authorization }, body: JSON.stringify(body) });
        }),
        fuzzParameters(RUNS.tokens, PROPERTIES),
      );
      report('x5c JWTs');
    });

    it('answers every OCSP request, GET and POST, with an OCSPResponse or a 4xx problem', { timeout: TEST_TIMEOUT }, async () => {
      const ocspCase = fc.record({ der: hostileDer(ocspSeeds), get: fc.boolean(), urlsafe: fc.boolean(), contentType: fc.constantFrom('application/ocsp-request', 'application/octet-stream', 'text/plain') });
      await fc.assert(
        fc.asyncProperty(ocspCase, async ({ der, get, urlsafe, contentType }) => {
          if (get && der.length > 0) {
            const base64 = urlsafe ? der.toString('base64url') : encodeURIComponent(der.toString('base64'));
            await check({ method: 'GET', path: `/ocsp/${base64}` });
          } else {
            await check({ method: 'POST', path: '/ocsp', headers: { 'Content-Type': contentType }, body: der });
          }
        }),
        fuzzParameters(RUNS.ocsp, PROPERTIES),
      );
      report('OCSP');
    });

    it('answers every CSV and JSON allow-list upload', { timeout: TEST_TIMEOUT }, async () => {
      const serial = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}$/);
      const csv = fc.array(fc.oneof(serial, hostileText, serial.map((s) => `"${s}",extra`)), { maxLength: 40 }).map((lines) => ['serial', ...lines].join('\n'));
      const json = fc.oneof(fc.array(fc.oneof(serial, hostileText), { maxLength: 40 }).map(jsonOf), fc.jsonValue({ maxDepth: 3 }).map(jsonOf));
      const upload = fc.oneof(
        csv.map((payload) => ({ contentType: 'text/csv', payload: Buffer.from(payload) })),
        json.map((payload) => ({ contentType: 'application/json', payload: Buffer.from(payload) })),
        fc.tuple(fc.constantFrom('text/csv', 'application/json'), fc.uint8Array({ maxLength: 500 })).map(([contentType, bytes]) => ({ contentType, payload: Buffer.from(bytes) })),
      );
      await fc.assert(
        fc.asyncProperty(upload, async ({ contentType, payload }) => {
          await check({ method: 'PUT', path: `/v1/claims/${ids.claim}/allowlist`, headers: { 'Content-Type': contentType, ...bearer(t.adminKey) }, body: payload });
        }),
        fuzzParameters(RUNS.allowlist, PROPERTIES),
      );
      report('allow-lists');
    });

    it('answers every EST enrollment body and label with a certificate or an EST text error', { timeout: TEST_TIMEOUT }, async () => {
      const csrDer = csrPool.map((pem) => decodeSinglePem(pem, ['CERTIFICATE REQUEST']));
      const body = fc.oneof(
        { weight: 1, arbitrary: fc.record({ der: hostileDer(csrDer), width: fc.integer({ min: 0, max: 76 }) }).map(({ der, width }) => {
          const base64 = der.toString('base64');
          return width === 0 ? base64 : (base64.match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join('\r\n');
        }) },
        { weight: 2, arbitrary: fc.constantFrom(...csrDer).map((der) => der.toString('base64')) },
        { weight: 1, arbitrary: hostileText },
      );
      const estCase = fc.record({
        label: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('ops', 'plain', 'keygen') }, { weight: 1, arbitrary: fc.webSegment() }),
        operation: fc.constantFrom('simpleenroll', 'simplereenroll', 'serverkeygen'),
        contentType: fc.constantFrom('application/pkcs10', 'application/pkcs10', 'application/pkcs10', 'text/plain', 'application/json'),
        transferEncoding: fc.boolean(),
        body,
      });
      await fc.assert(
        fc.asyncProperty(estCase, async (c) => {
          const auth = c.label === 'plain' ? { Authorization: `Bearer ${token({ certificatePem: station.certificatePem, key: station.privateKey }, exchangeAudience(t))}` } : bearer(t.adminKey);
          const headers: Record<string, string> = { 'Content-Type': c.contentType, ...auth };
          if (c.transferEncoding) headers['Content-Transfer-Encoding'] = 'base64';
          const label = encodeURIComponent(c.label) || 'x';
          await check({ method: 'POST', path: `/.well-known/est/${label}/${c.operation}`, headers, body: Buffer.from(c.body, 'utf8') });
        }),
        fuzzParameters(RUNS.est, PROPERTIES),
      );
      report('EST');
    });

    it('still answers and its audit chain verifies after the fuzzing', async () => {
      const health = await t.http().get('/healthz');
      assert.equal(health.status, 200);
      const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
      assert.equal(verify.status, 200);
      assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
      assert.deepEqual(escaped, []);
    });
  });
}

function signedWithHeader(key: KeyObject, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const b64url = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null').toString('base64url');
  const signingInput = `${b64url(header)}.${b64url(payload)}`;
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}
