import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import * as http from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApiDocument } from '../../src/openapi';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { HOSTILE_QUERIES, HOSTILE_SEGMENTS, HOSTILE_VALUES, hostileBodies, hostileJwts, seededBytes } from '../support/hostile-inputs';
import { answerProblem } from '../support/fuzz';
import { rawRequest } from '../support/raw-http';
import { createClaim, deviceToken, stationToken, StationCredentials } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * Hostile input against every route the OpenAPI document lists (and the OCSP binding), on both database drivers: a
 * fixed corpus (test/support/hostile-inputs.ts: deep/wide JSON, wrong types, nulls, huge strings, prototype keys, bad
 * UTF-8, bad percent-encoding, bad content types, random bytes as CSR/DER, bad JWTs, hostile query strings, oversized
 * headers and broken HTTP on raw sockets), then seeded random requests from fast-check. Bounded and deterministic:
 * the same requests on every run. Every answer must be below 500, every 4xx must be problem+json with a stable code (EST: text/plain "<CODE>: …"),
 * and OCSP always answers an OCSPResponse.
 */

const SEED = 20_261_206;
const RANDOM_RUNS = 2000;
const CONCURRENCY = 4;

type Schema = { $ref?: string; type?: string; format?: string; enum?: unknown[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema; minimum?: number; example?: unknown; oneOf?: Schema[]; allOf?: Schema[] };

interface Route {
  method: string;
  template: string;
  pathParams: string[];
  queryParams: string[];
  /** The JSON request body schema, when the route takes one. */
  body?: Schema;
  kind: 'api-key' | 'public' | 'station' | 'device' | 'ocsp';
}

interface Fixtures {
  rootId: string;
  deviceCaId: string;
  claimCaId: string;
  victimCaId: string;
  victimCertId: string;
  victimClaimId: string;
  station: StationCredentials;
  device: { certificatePem: string; key: KeyObject };
}

interface Spec {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Made when sent: station and device tokens are single use. */
  auth?: () => Record<string, string>;
}

const ZERO_UUID = '00000000-0000-4000-8000-000000000000';
const HTTP_METHODS = ['get', 'post', 'put', 'delete', 'patch'] as const;

function routesOf(document: OpenAPIObject): Route[] {
  const routes: Route[] = [];
  for (const [template, item] of Object.entries(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const parameters = (operation.parameters ?? []) as { name: string; in: string }[];
      const json = (operation.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content?.['application/json']?.schema;
      const kind: Route['kind'] = template.startsWith('/ocsp')
        ? 'ocsp'
        : template === '/v1/provisioning/exchange'
          ? 'station'
          : template === '/v1/certificates/renew'
            ? 'device'
            : (operation.security as unknown[] | undefined)?.length === 0
              ? 'public'
              : 'api-key';
      routes.push({
        method: method.toUpperCase(),
        template,
        pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        queryParams: parameters.filter((p) => p.in === 'query').map((p) => p.name),
        body: json,
        kind,
      });
    }
  }
  return routes;
}

/** Sends specs a few at a time over keep-alive connections and checks every answer. */
class Fuzzer {
  sent = 0;
  readonly byStatus = new Map<number, number>();
  readonly failures: string[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

  constructor(private readonly baseUrl: string) {}

  async run(specs: Spec[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < specs.length) await this.send(specs[next++]);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  close(): void {
    this.agent.destroy();
  }

  /** Records an answer read by other means (raw sockets). */
  record(what: string, status: number | null, contentType: string | undefined, text: string): void {
    this.sent++;
    if (status === null) return;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    const problem = answerProblem(what, status, contentType, text);
    if (problem) this.failures.push(problem);
  }

  private send(spec: Spec): Promise<void> {
    const url = new URL(this.baseUrl);
    const headers: Record<string, string> = { ...spec.headers, ...spec.auth?.() };
    if (spec.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(spec.body));
    const what = `${spec.method} ${spec.path.length > 120 ? `${spec.path.slice(0, 120)}…` : spec.path}`;
    return new Promise((resolve) => {
      let answered = false;
      let request: http.ClientRequest;
      try {
        request = http.request({ hostname: url.hostname, port: url.port, method: spec.method, path: spec.path, headers, agent: this.agent }, (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            this.record(what, res.statusCode ?? 0, res.headers['content-type'], Buffer.concat(chunks).toString('utf8'));
            resolve();
          });
          res.on('error', () => resolve());
        });
      } catch (err) {
        // The client itself refused to send it (e.g. a character Node will not put in a path): not a server answer.
        this.failures.push(`${what}: the test could not send it (${(err as Error).message})`);
        return resolve();
      }
      request.on('error', (err) => {
        // An early answer may close the connection while the body is still being written; the answer is what counts.
        if (!answered) this.failures.push(`${what}: no answer (${err.message})`);
        resolve();
      });
      request.end(spec.body);
    });
  }
}

for (const { driver, skip } of drivers()) {
  describe(`fuzz corpus on ${driver}`, { skip }, () => {
    let t: TestApp;
    let f: Fixtures;
    let routes: Route[];
    let schemas: Record<string, Schema>;
    let fuzzer: Fuzzer;

    before(async () => {
      t = await startTestApp(driver, { env: { ALLOWLIST_MAX_SERIALS: '1000' } });
      const post = async (path: string, body: object) => {
        const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
        assert.equal(res.status, 201, `${path}: ${res.text}`);
        return res.body;
      };
      const root = await post('/v1/authorities', { name: 'Fuzz Root', type: 'root', subject: { commonName: 'Fuzz Root' }, pathLength: 2 });
      const deviceCa = await post('/v1/authorities', { name: 'Fuzz Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Fuzz Devices' } });
      const victimCa = await post('/v1/authorities', { name: 'Fuzz Victim', type: 'intermediate', parentId: root.id, subject: { commonName: 'Fuzz Victim' } });
      const claimCa = await post('/v1/authorities', { name: 'Fuzz Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Fuzz Claims' } });
      const station = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 50 });
      const victimClaim = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      const device = deviceKeyAndCsr('fuzz-device');
      const deviceCert = await post('/v1/certificates', { authorityId: deviceCa.id, csr: device.csrPem, profile: 'device', thingName: 'fuzz-device' });
      const victimCert = await post('/v1/certificates', { authorityId: deviceCa.id, csr: deviceKeyAndCsr('fuzz-victim').csrPem, profile: 'device', thingName: 'fuzz-victim' });
      f = {
        rootId: root.id,
        deviceCaId: deviceCa.id,
        claimCaId: claimCa.id,
        victimCaId: victimCa.id,
        victimCertId: victimCert.id,
        victimClaimId: victimClaim.claim.id,
        station: station.station,
        device: { certificatePem: deviceCert.certificatePem, key: device.privateKey },
      };
      const document = buildOpenApiDocument(t.app);
      routes = routesOf(document);
      schemas = (document.components?.schemas ?? {}) as Record<string, Schema>;
      fuzzer = new Fuzzer(t.baseUrl);
    });
    after(async () => {
      fuzzer?.close();
      await t?.close();
    });

    const resolve = (schema: Schema): Schema => (schema.$ref ? resolve(schemas[schema.$ref.split('/').pop()!]) : (schema.allOf?.length === 1 ? resolve(schema.allOf[0]) : schema));

    /** A plausible value for a field: the enum's first, a fixture id for ids, a fresh CSR for csr fields. */
    function exampleOf(raw: Schema, name: string, depth = 0): unknown {
      const schema = resolve(raw);
      if (schema.enum?.length) return schema.enum[0];
      if (name === 'csr') return deviceKeyAndCsr('fuzz-example').csrPem;
      if (schema.type === 'object' || schema.properties) {
        if (depth > 3) return {};
        const out: Record<string, unknown> = {};
        for (const key of schema.required ?? []) out[key] = exampleOf(schema.properties?.[key] ?? {}, key, depth + 1);
        return out;
      }
      if (schema.type === 'array') return [exampleOf(schema.items ?? {}, name, depth + 1)];
      if (schema.type === 'integer' || schema.type === 'number') return schema.minimum ?? 1;
      if (schema.type === 'boolean') return false;
      if (schema.format === 'uuid') return { parentId: f.rootId, claimAuthorityId: f.claimCaId }[name] ?? (name.toLowerCase().includes('authority') ? f.deviceCaId : ZERO_UUID);
      if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString();
      if (name === 'thingNameTemplate') return 'fuzz-{serial}';
      if (typeof schema.example === 'string') return schema.example;
      return 'fuzz';
    }

    /** Paths of the fields a body schema names, nested objects included (two levels). */
    function fieldPaths(raw: Schema, prefix: string[] = []): string[][] {
      const schema = resolve(raw);
      const paths: string[][] = [];
      for (const [key, child] of Object.entries(schema.properties ?? {})) {
        paths.push([...prefix, key]);
        if (prefix.length < 1 && resolve(child).properties) paths.push(...fieldPaths(child, [...prefix, key]));
      }
      return paths;
    }

    function withField(body: unknown, path: string[], value: unknown): unknown {
      const copy = (typeof body === 'object' && body !== null && !Array.isArray(body) ? structuredClone(body) : {}) as Record<string, unknown>;
      let at = copy;
      for (const key of path.slice(0, -1)) {
        if (typeof at[key] !== 'object' || at[key] === null) at[key] = {};
        at = at[key] as Record<string, unknown>;
      }
      at[path[path.length - 1]] = value;
      return copy;
    }

    function pathFor(route: Route, overrides: Record<string, string> = {}): string {
      return route.template.replace(/\{(\w+)\}/g, (_, name: string) => {
        if (overrides[name] !== undefined) return overrides[name];
        if (route.template.startsWith('/ocsp')) return encodeURIComponent(seededBytes(10, 40).toString('base64'));
        if (name === 'name') return 'fuzz-policy';
        if (route.template.startsWith('/v1/authorities/')) return f.victimCaId;
        if (route.template.startsWith('/v1/certificates/')) return f.victimCertId;
        if (route.template.startsWith('/v1/claims/')) return f.victimClaimId;
        return ZERO_UUID;
      });
    }

    /** The credentials a route takes: the admin key, a fresh station or device token, or none. */
    function authFor(route: Route): (() => Record<string, string>) | undefined {
      if (route.kind === 'api-key') return () => bearer(t.adminKey);
      if (route.kind === 'station') return () => ({ Authorization: `Bearer ${stationToken(t, f.station)}` });
      if (route.kind === 'device') return () => ({ Authorization: `Bearer ${deviceToken(t, f.device.certificatePem, f.device.key)}` });
      return undefined;
    }

    const jsonSpec = (route: Route, body: unknown, path = pathFor(route)): Spec => ({
      method: route.method,
      path,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      auth: authFor(route),
    });

    function corpus(): Spec[] {
      const specs: Spec[] = [];
      for (const route of routes) {
        const base = route.body ? exampleOf(route.body, '') : undefined;
        const plain = (path: string): Spec => (base === undefined ? { method: route.method, path, auth: authFor(route) } : jsonSpec(route, base, path));
        // Path parameters: every hostile segment in each.
        for (const param of route.pathParams) {
          for (const segment of HOSTILE_SEGMENTS) specs.push(plain(pathFor(route, { [param]: segment })));
        }
        // Query strings on the routes that read one.
        if (route.queryParams.length > 0) {
          for (const query of HOSTILE_QUERIES) specs.push({ ...plain(pathFor(route)), path: `${pathFor(route)}?${query}` });
        }
        // Credentials: none, junk, an unknown key, another scheme, an oversized one.
        for (const authorization of [undefined, 'Bearer', 'Bearer garbage', 'Bearer fpk_000000000000.AAAA', 'Basic YWRtaW46YWRtaW4=', `Bearer ${'k'.repeat(12_000)}`]) {
          const spec = plain(pathFor(route));
          specs.push({ ...spec, auth: undefined, headers: { ...spec.headers, ...(authorization ? { Authorization: authorization } : {}) } });
        }
        if (route.method === 'GET' || route.method === 'DELETE') continue;
        // Whole bodies, with the route's credentials.
        for (const body of hostileBodies()) specs.push({ method: route.method, path: pathFor(route), headers: { 'Content-Type': body.contentType }, body: body.payload, auth: authFor(route) });
        // One field at a time, replaced by each hostile value.
        if (route.body) {
          for (const field of fieldPaths(route.body)) {
            for (const [, value] of HOSTILE_VALUES) specs.push(jsonSpec(route, withField(base, field, value)));
          }
          specs.push(jsonSpec(route, { ...(base as object), unexpected: true }));
        }
      }
      // Station and device routes: bad tokens, with a well-formed body.
      for (const route of routes.filter((r) => r.kind === 'station' || r.kind === 'device')) {
        const audience = `${t.config.publicBaseUrl}${route.template}`;
        const other = route.kind === 'station' ? '/v1/certificates/renew' : '/v1/provisioning/exchange';
        const credentials = route.kind === 'station' ? { certificatePem: f.station.certificatePem, key: f.station.privateKey } : { certificatePem: f.device.certificatePem, key: f.device.key };
        for (const [, token] of hostileJwts({ ...credentials, audience, otherAudience: `${t.config.publicBaseUrl}${other}` })) {
          specs.push({ ...jsonSpec(route, exampleOf(route.body!, '')), auth: undefined, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } });
        }
      }
      // The allow-list upload: broken CSV and JSON lists.
      const allowlist = `/v1/claims/${f.victimClaimId}/allowlist`;
      for (const [contentType, payload] of [
        ['text/csv', Buffer.concat([Buffer.from('serial\nA1\n'), Buffer.from([0xff, 0xfe, 0x0a])])],
        ['text/csv', `serial\n${'x'.repeat(10_000)}\n`],
        ['text/csv', '"unterminated\nA1\n'],
        ['text/csv', `serial\n${Array.from({ length: 1001 }, (_, i) => `S${i}`).join('\n')}\n`],
        ['text/csv', 'serial\r\n\u0000\r\n'],
        ['application/json', '['.repeat(5000)],
        ['application/json', '[1,2,3]'],
        ['application/json', '{"serials":["A1"]}'],
        ['application/json', '["A1",'],
        ['application/json', `["${'\\ud800'.repeat(100)}"]`],
      ] as const) {
        specs.push({ method: 'PUT', path: allowlist, headers: { 'Content-Type': contentType }, body: payload, auth: () => bearer(t.adminKey) });
      }
      // The OCSP responder: random bytes and broken encodings.
      for (let i = 0; i < 20; i++) {
        specs.push({ method: 'POST', path: '/ocsp', headers: { 'Content-Type': 'application/ocsp-request' }, body: seededBytes(100 + i, 1 + i * 37) });
        specs.push({ method: 'GET', path: `/ocsp/${encodeURIComponent(seededBytes(200 + i, 1 + i * 11).toString('base64'))}` });
      }
      for (const segment of ['%zz', '%E0%A4%A', '!!!', 'A'.repeat(5000), '..%2F..%2F', '%00%00']) specs.push({ method: 'GET', path: `/ocsp/${segment}` });
      specs.push({ method: 'POST', path: '/ocsp', headers: { 'Content-Type': 'application/ocsp-request' }, body: seededBytes(300, 70 * 1024) });
      for (const method of ['PUT', 'DELETE', 'PATCH']) specs.push({ method, path: '/ocsp', body: 'x', headers: { 'Content-Type': 'text/plain' } });
      return specs;
    }

    /** Seeded random requests: any route, random JSON, random fields, random path segments and queries. */
    function randomSpecs(): Spec[] {
      const jsonish = fc.jsonValue({ maxDepth: 4 });
      const request = fc.record({
        route: fc.constantFrom(...routes),
        shape: fc.constantFrom('json', 'field', 'bytes', 'segment', 'query'),
        json: jsonish,
        key: fc.string({ maxLength: 12 }),
        text: fc.string({ unit: 'binary', maxLength: 200 }),
        bytes: fc.uint8Array({ maxLength: 400 }),
        segment: fc.webSegment(),
        query: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 40 }), { maxKeys: 4 }),
        authenticated: fc.boolean(),
      });
      return fc.sample(request, { seed: SEED, numRuns: RANDOM_RUNS }).map((r): Spec => {
        const route = r.route;
        const base = route.body ? exampleOf(route.body, '') : {};
        const auth = r.authenticated ? authFor(route) : undefined;
        const path = pathFor(route);
        switch (r.shape) {
          case 'json':
            return { ...jsonSpec(route, r.json, path), auth };
          case 'field': {
            const named = route.body ? fieldPaths(route.body) : [];
            const fields = named.length > 0 ? named : [[r.key || 'x']];
            const field = fields[r.text.length % fields.length];
            return { ...jsonSpec(route, withField(base, field, r.json ?? r.text), path), auth };
          }
          case 'bytes':
            return { method: route.method, path, headers: { 'Content-Type': route.kind === 'ocsp' ? 'application/ocsp-request' : 'application/json' }, body: Buffer.from(r.bytes), auth };
          case 'segment': {
            const param = route.pathParams[0];
            const segmented = param ? pathFor(route, { [param]: encodeURIComponent(r.segment) || 'x' }) : `${path}/${encodeURIComponent(r.segment)}`;
            return { ...(route.body ? jsonSpec(route, base, segmented) : { method: route.method, path: segmented }), auth };
          }
          default: {
            const query = new URLSearchParams(Object.entries(r.query).map(([k, v]): [string, string] => [k, v.replace(/[\ud800-\udfff]/g, '?')])).toString();
            return { ...(route.body ? jsonSpec(route, base, `${path}?${query}`) : { method: route.method, path: `${path}?${query}` }), auth };
          }
        }
      });
    }

    /** Broken HTTP that clients will not send: written on raw sockets. */
    async function rawCorpus(): Promise<void> {
      const head = (line: string, extra = '') => `${line}\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`;
      const cases: [string, string][] = [
        ['oversized headers on the exchange', head('POST /v1/provisioning/exchange HTTP/1.1', `X-Pad: ${'p'.repeat(20_000)}\r\nContent-Length: 0\r\n`)],
        ['oversized headers on an API route', head('GET /v1/authorities HTTP/1.1', `Authorization: Bearer ${'k'.repeat(17_000)}\r\n`)],
        ['oversized headers on OCSP', head(`GET /ocsp/${'A'.repeat(20_000)} HTTP/1.1`)],
        ['a URL of 20 KB', head(`GET /v1/certificates?thingName=${'t'.repeat(20_000)} HTTP/1.1`)],
        ['a request line of garbage', 'HELLO WORLD\r\n\r\n'],
        ['HTTP/0.9', 'GET /\r\n\r\n'],
        ['HTTP/2 preface on HTTP/1.1', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
        ['no Host header', 'GET /v1/authorities HTTP/1.1\r\nConnection: close\r\n\r\n'],
        ['an absolute-form URL', head('GET http://evil.example/v1/authorities HTTP/1.1')],
        ['an asterisk-form URL', head('OPTIONS * HTTP/1.1')],
        ['a NUL in a header', head('GET /healthz HTTP/1.1', 'X-A: a\u0000b\r\n')],
        ['an obsolete folded header', head('GET /healthz HTTP/1.1', 'X-A: a\r\n  folded\r\n')],
        ['Content-Length and Transfer-Encoding together', head('POST /v1/api-keys HTTP/1.1', 'Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n'],
        ['two different Content-Lengths', head('POST /v1/api-keys HTTP/1.1', 'Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n') + '{}'],
        ['a negative Content-Length', head('POST /v1/api-keys HTTP/1.1', 'Content-Type: application/json\r\nContent-Length: -1\r\n') + '{}'],
        ['a bad chunk size', head('POST /v1/api-keys HTTP/1.1', 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n') + 'zz\r\n{}\r\n0\r\n\r\n'],
        ['a body longer than its Content-Length', head('POST /v1/fleet/audits HTTP/1.1', `Authorization: Bearer ${t.adminKey}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n`) + '{}GARBAGE\r\n\r\n'],
        ['bad percent-encoding', head('GET /v1/authorities/%E0%A4%A/crl HTTP/1.1')],
        ['a raw space in the path', head('GET /v1/authorities/a b HTTP/1.1')],
        ['a raw non-ASCII path', head('GET /v1/authorities/\u00e9\u00e9 HTTP/1.1')],
      ];
      for (const [name, request] of cases) {
        const res = await rawRequest(t.baseUrl, Buffer.from(request, 'latin1'), { timeoutMs: 3000 });
        fuzzer.record(`RAW ${name}`, res?.status ?? null, res?.headers['content-type'], res?.text ?? '');
      }
      // Bodies cut short: the client gives up; nobody is there to answer, and the server must carry on.
      for (const path of ['/v1/api-keys', '/v1/provisioning/exchange', `/v1/claims/${f.victimClaimId}/allowlist`, '/ocsp']) {
        const request = `POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${t.adminKey}\r\nContent-Type: ${path.includes('allowlist') ? 'text/csv' : 'application/json'}\r\nContent-Length: 5000\r\n\r\n{"name":`;
        const res = await rawRequest(t.baseUrl, request, { timeoutMs: 300, endAfterWrite: true });
        fuzzer.record(`RAW a body cut short on ${path}`, res?.status ?? null, res?.headers['content-type'], res?.text ?? '');
      }
    }

    it('answers every hostile request below 500, every 4xx as problem+json, and keeps working', async (ctx) => {
      const started = Date.now();
      await fuzzer.run(corpus());
      await fuzzer.run(randomSpecs());
      await rawCorpus();
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const count = (test: (status: number) => boolean) => [...fuzzer.byStatus].filter(([status]) => test(status)).reduce((sum, [, n]) => sum + n, 0);
      const summary =
        `${driver}: ${fuzzer.sent} requests in ${seconds} s over ${routes.length} routes; ` +
        `2xx ${count((s) => s < 300)}, 4xx ${count((s) => s >= 400 && s < 500)}, 5xx ${count((s) => s >= 500)}; ` +
        `by status ${JSON.stringify(Object.fromEntries([...fuzzer.byStatus].sort(([a], [b]) => a - b)))}`;
      ctx.diagnostic(summary);
      console.log(`fuzz corpus: ${summary}`);
      assert.deepEqual(fuzzer.failures.slice(0, 25), [], `${fuzzer.failures.length} answers broke the rules`);
      assert.equal(count((s) => s >= 500), 0);
      assert.ok(fuzzer.sent > 2000, `a corpus of ${fuzzer.sent} requests`);

      const health = await t.http().get('/healthz');
      assert.equal(health.status, 200);
      const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
      assert.equal(verify.status, 200);
      assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    });
  });
}
