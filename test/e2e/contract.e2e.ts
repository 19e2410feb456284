import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { parse } from 'yaml';
import { ACTOR_TYPES } from '../../src/common/actor';
import { ERROR_CODES, Errors } from '../../src/common/errors';
import { ProblemGroups } from '../../src/common/openapi';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { ContractMismatchError, contractChecked, ContractValidator, ObservedResponse, Spec } from '../support/response-validator';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/* eslint-disable @typescript-eslint/no-explicit-any -- walking a parsed YAML document */
type Json = any;

const problem = (codes: string[]) => ({
  allOf: [{ $ref: '#/components/schemas/Problem' }, { type: 'object', required: ['code'], properties: { code: { type: 'string', enum: codes } } }],
});

/** A small contract exercising what the validator must get right for openapi.yaml. */
const SPEC: Spec = {
  paths: {
    '/things/{id}': {
      get: {
        operationId: 'getThing',
        responses: {
          '200': {
            description: 'a thing',
            headers: { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' }, 'Retry-After': { schema: { type: 'integer', minimum: 0 } } },
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } },
          },
          '404': {
            description: 'none',
            headers: { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } },
            content: { 'application/problem+json': { schema: problem(['THING_NOT_FOUND']) } },
          },
        },
      },
    },
    '/files/{path}': {
      get: { operationId: 'getFile', responses: { '200': { description: 'bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } } },
    },
  },
  components: {
    headers: { 'X-Request-Id': { required: true, schema: { type: 'string' } } },
    schemas: {
      Thing: {
        type: 'object',
        required: ['id', 'createdAt', 'parent', 'kind'],
        properties: {
          id: { type: 'string', format: 'uuid' },
          createdAt: { type: 'string', format: 'date-time' },
          parent: { nullable: true, type: 'object', allOf: [{ $ref: '#/components/schemas/Ref' }] },
          kind: { type: 'string', nullable: true, enum: ['a', 'b', null] },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
      Ref: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
      Problem: { type: 'object', required: ['status', 'code'], properties: { status: { type: 'integer' }, code: { type: 'string' }, detail: { type: 'string' } } },
    },
  },
};

const THING = { id: randomUUID(), createdAt: '2026-12-06T10:00:00.000Z', parent: { id: 'p' }, kind: 'a', labels: { site: 'x' } };
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'r1' };
const PROBLEM_HEADERS = { 'content-type': 'application/problem+json', 'x-request-id': 'r1' };

function thing(overrides: Partial<ObservedResponse> = {}, body: object = THING): ObservedResponse {
  return { method: 'GET', url: `/things/${THING.id}`, status: 200, headers: JSON_HEADERS, body, ...overrides };
}

describe('the e2e response validator (test/support/response-validator.ts)', () => {
  const validator = new ContractValidator(SPEC);
  const mismatches = (response: ObservedResponse) => validator.check(response).mismatches.join(' | ');

  it('accepts a response that matches its operation, status, media type, headers and schema', () => {
    assert.deepEqual(validator.check(thing()), { operation: `getThing (GET /things/${THING.id} → 200)`, mismatches: [] });
  });

  it('refuses a body property the schema does not declare, naming it', () => {
    assert.match(mismatches(thing({}, { ...THING, secret: 'x' })), /property "secret" is not declared/);
    assert.match(mismatches(thing({}, { ...THING, parent: { id: 'p', extra: 1 } })), /\/parent: property "extra" is not declared/);
  });

  it('holds problems to the codes of their operation, across the allOf that narrows them', () => {
    const notFound = (body: object) => thing({ status: 404, headers: PROBLEM_HEADERS }, body);
    assert.equal(mismatches(notFound({ status: 404, code: 'THING_NOT_FOUND', detail: 'no' })), '');
    assert.match(mismatches(notFound({ status: 404, code: 'OTHER_CODE' })), /\/code: "OTHER_CODE" is not one of \["THING_NOT_FOUND"\]/);
    assert.match(mismatches(notFound({ status: 404, code: 'THING_NOT_FOUND', hint: 'x' })), /property "hint" is not declared/);
  });

  it('reads nullable as OpenAPI 3.0 does: null where declared, and only there', () => {
    assert.equal(mismatches(thing({}, { ...THING, parent: null, kind: null })), '');
    assert.match(mismatches(thing({}, { ...THING, id: null })), /\/id: must be string/);
    assert.match(mismatches(thing({}, { ...THING, kind: 'c' })), /\/kind: "c" is not one of/);
  });

  it('checks formats (date-time, uuid)', () => {
    assert.match(mismatches(thing({}, { ...THING, createdAt: 'yesterday' })), /\/createdAt: must match format "date-time"/);
    assert.match(mismatches(thing({}, { ...THING, id: 'not-a-uuid' })), /\/id: must match format "uuid"/);
  });

  it('refuses an undeclared status and an undeclared media type', () => {
    assert.match(mismatches(thing({ status: 500, headers: PROBLEM_HEADERS }, { status: 500, code: 'INTERNAL_ERROR' })), /status 500 is not declared \(declared: 200, 404\); problem code INTERNAL_ERROR/);
    assert.match(mismatches(thing({ headers: { ...JSON_HEADERS, 'content-type': 'text/html' } }, '<p>' as unknown as object)), /media type text\/html is not declared/);
  });

  it('refuses a missing required header, an undeclared one, and a value outside the header’s schema', () => {
    assert.match(mismatches(thing({ headers: { 'content-type': 'application/json' } })), /required header x-request-id is missing/);
    assert.match(mismatches(thing({ headers: { ...JSON_HEADERS, 'x-debug': '1' } })), /header x-debug is sent but not declared/);
    assert.match(mismatches(thing({ headers: { ...JSON_HEADERS, 'retry-after': 'soon' } })), /header retry-after: "soon" .*must be integer/);
    assert.equal(mismatches(thing({ headers: { ...JSON_HEADERS, 'retry-after': '5', date: 'Sun, 06 Dec 2026 10:00:00 GMT' } })), '');
  });

  it('routes a last path parameter holding "/" (OCSP GET) and answers for paths the contract does not have', () => {
    const file = { method: 'GET', status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([1]) };
    assert.equal(validator.check({ ...file, url: '/files/a/b+c==' }).operation, 'getFile (GET /files/a/b+c== → 200)');
    const unknown = { method: 'GET', url: '/nowhere', headers: PROBLEM_HEADERS, body: { status: 404, code: 'NOT_FOUND' } };
    assert.deepEqual(validator.check({ ...unknown, status: 404 }).mismatches, [], 'a 404 problem for a route that does not exist');
    assert.match(validator.check({ ...unknown, status: 200 }).mismatches.join(), /answered 200, but openapi.yaml has no such operation/);
  });

  describe('wired into supertest (contractChecked)', () => {
    let server: http.Server;
    let url: string;
    before(async () => {
      server = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'r1' });
        res.end(JSON.stringify({ ...THING, leaked: true }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => server.close());

    it('fails the request of a mismatching response, naming the operation and the mismatch', async () => {
      const agent = contractChecked(request.agent(url), request.Test, validator);
      await assert.rejects(agent.get(`/things/${THING.id}`), (err: Error) => {
        assert.ok(err instanceof ContractMismatchError);
        assert.match(err.message, /^openapi\.yaml contract: getThing \(GET \/things\/.* → 200\): body \(root\): property "leaked" is not declared$/);
        return true;
      });
    });

    it('reports the test’s own failed expectation first', async () => {
      const agent = contractChecked(request.agent(url), request.Test, validator);
      await assert.rejects(agent.get(`/things/${THING.id}`).expect(201), /expected 201 "Created", got 200 "OK"/);
    });
  });
});

const document: Json = parse(fs.readFileSync(path.resolve(__dirname, '../../../openapi.yaml'), 'utf8'));
const operations: { id: string; path: string; method: string; operation: Json }[] = Object.entries(document.paths).flatMap(([p, item]: [string, Json]) =>
  Object.entries(item).map(([method, operation]: [string, Json]) => ({ id: operation.operationId, path: p, method, operation })),
);
const resolve = (object: Json): Json => (object?.$ref ? resolve(object.$ref.split('/').slice(1).reduce((node: Json, key: string) => node[key.replace(/~1/g, '/')], document)) : object);

describe('openapi.yaml (issue 22: an outside contract review)', () => {
  it('declares 201 for a first exchange and 200 for a retry, both with the device certificate', () => {
    const responses = operations.find((o) => o.id === 'exchange')!.operation.responses;
    for (const status of ['200', '201']) assert.equal(responses[status].content['application/json'].schema.$ref, '#/components/schemas/ExchangeResultDto');
  });

  it('lists every kind of audit actor (common/actor.ts ACTOR_TYPES)', () => {
    assert.deepEqual(document.components.schemas.AuditActorDto.properties.type.enum, [...ACTOR_TYPES]);
    assert.ok(ACTOR_TYPES.includes('claim-certificate') && ACTOR_TYPES.includes('device-certificate'));
  });

  it('gives ErrorCode every code of Errors, and each operation’s problems exactly codes of their status', () => {
    assert.deepEqual(resolve(document.components.schemas.ErrorCode).enum, [...ERROR_CODES]);
    const statusOf = new Map(Object.values(Errors).map((kind) => [kind.code, kind.status]));
    for (const { id, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses) as [string, Json][]) {
        const schema = resolve(response).content?.['application/problem+json']?.schema;
        if (!schema) continue;
        const codes: string[] = schema.allOf[1].properties.code.enum;
        assert.ok(codes.length > 0, `${id} ${status}`);
        for (const code of codes) assert.equal(String(statusOf.get(code)), status, `${id} ${status}: ${code}`);
      }
    }
    const exchange403 = operations.find((o) => o.id === 'exchange')!.operation.responses['403'].content['application/problem+json'].schema.allOf[1].properties.code.enum;
    assert.deepEqual(exchange403, ['CLAIM_REVOKED', 'CLAIM_NOT_YET_VALID', 'CLAIM_EXPIRED', 'SERIAL_NOT_ALLOWED', 'ATTESTATION_REQUIRED'], 'no API-key FORBIDDEN on a certificate-authenticated route');
  });

  it('declares on the AWS IoT events endpoint every problem of an AWS IoT call made while the request waits (ConfirmTopicRuleDestination)', () => {
    const responses = operations.find((o) => o.id === 'receiveIotEvent')!.operation.responses;
    const declared = Object.values(responses).flatMap((response) => (resolve(response as Json).content?.['application/problem+json']?.schema?.allOf[1].properties.code.enum ?? []) as string[]);
    for (const kind of ProblemGroups.iotCall) assert.ok(declared.includes(kind.code), `receiveIotEvent does not declare ${kind.code}`);
    assert.ok(declared.includes('AWS_LIMIT_EXCEEDED') && declared.includes('IOT_CONFLICT'));
  });

  it('declares the members problems carry beyond RFC 9457, on the operations that answer with them', () => {
    const extras = (id: string, status: string) => Object.keys(operations.find((o) => o.id === id)!.operation.responses[status].content['application/problem+json'].schema.allOf[1].properties);
    assert.ok(extras('renewCertificate', '403').includes('renewableFrom'));
    assert.ok(extras('savePolicy', '422').includes('findings'));
    assert.ok(extras('readyz', '503').includes('checks'));
    assert.ok(extras('registerIotCa', '409').includes('resourceArn'));
    assert.ok(extras('issueCertificate', '503').includes('retryAfterSeconds'));
    assert.deepEqual(extras('getAuthority', '404'), ['code']);
  });

  it('declares the response headers once and on every response: X-Request-Id, WWW-Authenticate, Retry-After, caching', () => {
    assert.deepEqual(Object.keys(document.components.headers).sort(), [
      'Cache-Control',
      'Content-Disposition',
      'Content-Transfer-Encoding',
      'ETag',
      'Expires',
      'Last-Modified',
      'Location',
      'Retry-After',
      'Strict-Transport-Security',
      'WWW-Authenticate',
      'X-Claim-Id',
      'X-Content-Type-Options',
      'X-Request-Id',
    ]);
    for (const { id, path: p, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses) as [string, Json][]) {
        const headers = Object.keys(resolve(response).headers ?? {});
        assert.ok(headers.includes('X-Request-Id'), `${id} ${status}`);
        if (status === '401') assert.ok(headers.includes('WWW-Authenticate'), `${id} 401`);
        if (Number(status) >= 400) assert.ok(headers.includes('Cache-Control'), `${id} ${status}: problems say no-store`);
        assert.ok(headers.includes('Cache-Control'), `${id} ${status}: every answer says how it may be cached (no-store by default)`);
        assert.ok(headers.includes('X-Content-Type-Options') && headers.includes('Strict-Transport-Security'), `${id} ${status}: the security headers`);
        if (resolve(response).content?.['application/problem+json']?.schema?.allOf?.[1].properties.retryAfterSeconds) assert.ok(headers.includes('Retry-After'), `${id} ${status}`);
      }
      if (p.startsWith('/ocsp')) assert.equal(operation.responses['200'].headers['X-Request-Id'].required, false, 'OCSP only echoes a given id');
    }
    const headersOf = (id: string) => Object.keys(operations.find((o) => o.id === id)!.operation.responses['200'].headers);
    const security = ['Strict-Transport-Security', 'X-Content-Type-Options'];
    assert.deepEqual(headersOf('getAuthorityCrl').sort(), ['X-Request-Id', 'Cache-Control', 'Last-Modified', 'Expires', ...security].sort());
    assert.deepEqual(headersOf('getOcspRequest').sort(), ['X-Request-Id', 'Cache-Control', 'ETag', 'Last-Modified', 'Expires', ...security].sort());
    assert.deepEqual(headersOf('getAuthorityCertificate').sort(), ['X-Request-Id', 'Cache-Control', 'Content-Disposition', ...security].sort());
  });

  it('declares binary bodies as type string, format binary, under their media types', () => {
    const content = (id: string, status = '200') => operations.find((o) => o.id === id)!.operation.responses[status].content;
    const binary = { type: 'string', format: 'binary' };
    assert.deepEqual(content('getAuthorityCrl')['application/pkix-crl'].schema, binary);
    assert.deepEqual(content('getAuthorityCertificate')['application/pkix-cert'].schema, binary);
    assert.deepEqual(content('getCertificate')['application/x-pem-file'].schema, binary);
    for (const mediaType of ['application/x-pem-file', 'application/pkcs7-mime']) assert.deepEqual(content('getAuthorityCertificate')[mediaType].schema, binary);
    for (const mediaType of ['application/pkix-cert', 'application/pkcs7-mime']) assert.deepEqual(content('getCertificate')[mediaType].schema, binary);
    assert.deepEqual(content('createClaim', '201')['application/x-pkcs12'].schema, binary);
    assert.deepEqual(content('postOcspRequest')['application/ocsp-response'].schema, binary);
    assert.deepEqual(content('getOcspRequest')['application/ocsp-response'].schema, binary);
    assert.deepEqual(operations.find((o) => o.id === 'postOcspRequest')!.operation.requestBody.content['application/ocsp-request'].schema, binary);
  });

  it('leaves defaulted request fields optional, the default in the description (openapi-typescript makes a `default` required)', () => {
    const schemas = document.components.schemas;
    const create = schemas.CreateAuthorityDto;
    for (const field of ['keyBackend', 'usage']) {
      assert.ok(!create.required.includes(field), field);
      assert.equal(create.properties[field].default, undefined, field);
    }
    assert.match(create.properties.keyBackend.description, /Default: `local`\./);
    assert.match(schemas.RegisterIotCaDto.properties.deviceRegistration.description, /Default: `jitr`\./);
    const requestOnly = ['CreateAuthorityDto', 'RegisterIotCaDto', 'CreateClaimDto', 'ClaimCertificateRequestDto', 'RevokeClaimDto', 'OpenCampaignDto', 'StartAuditDto'];
    for (const name of requestOnly) for (const [field, property] of Object.entries(schemas[name].properties) as [string, Json][]) assert.equal(property.default, undefined, `${name}.${field}`);
  });

  it('lists null in the enum of every nullable enum (OpenAPI 3.0.3)', () => {
    assert.deepEqual(document.components.schemas.CertificateDto.properties.revocationReason.enum.at(-1), null);
    assert.deepEqual(document.components.schemas.AuditActorDto.properties.role.enum, ['admin', 'operator', 'auditor', 'aws-integration', null]);
  });
});

for (const { driver, skip } of drivers()) {
  describe(`contract regressions on ${driver} (issue 22)`, { skip }, () => {
    let t: TestApp;
    const ssl = new OpenSslWorkspace();
    before(async () => {
      t = await startTestApp(driver);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('never lets an HTTP cache keep a 404 for a CA certificate or CRL; the certificate itself is cacheable', async () => {
      const missing = randomUUID();
      for (const route of [`/v1/authorities/${missing}/certificate`, `/v1/authorities/${missing}/crl`]) {
        const res = await t.http().get(route);
        assert.equal(res.status, 404, route);
        assert.equal(res.body.code, 'AUTHORITY_NOT_FOUND');
        assert.equal(res.headers['cache-control'], 'no-store', route);
        for (const header of ['etag', 'last-modified', 'expires']) assert.equal(res.headers[header], undefined, `${route}: ${header}`);
      }
      const { root } = await createCaPair(t);
      const found = await t.http().get(`/v1/authorities/${root.id}/certificate`);
      assert.equal(found.status, 200);
      assert.equal(found.headers['cache-control'], 'public, max-age=3600');
      assert.equal(found.headers['content-type'], 'application/pkix-cert');
    });

    it('shows a campaign’s revocationReason in its selector, as declared', async () => {
      const { intermediate } = await createCaPair(t);
      await issueDevice(t, ssl, intermediate.id, 'contract-thing-1');
      const opened = await t
        .http()
        .post('/v1/rotations')
        .set(bearer(t.adminKey))
        .send({ selector: { authorityId: intermediate.id }, reason: 'contract', deadline: new Date(Date.now() + 86_400_000).toISOString(), onDeadline: 'revoke', revocationReason: 'keyCompromise' });
      assert.equal(opened.status, 201, opened.text);
      assert.equal(opened.body.selector.revocationReason, 'keyCompromise');
      const shown = await t.http().get(`/v1/rotations/${opened.body.id}`).set(bearer(t.adminKey));
      assert.equal(shown.body.selector.revocationReason, 'keyCompromise');
    });
  });
}
