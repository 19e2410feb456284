/**
 * Checks every response the e2e suites receive against the contract, openapi.yaml: the status is declared for the
 * operation, the media type is one the status declares, every header the service sent is declared (and every
 * required one was sent, with a value of its schema), and the body matches the schema.
 *
 * Bodies are checked strictly: an object schema with `properties` and no `additionalProperties` accepts no other
 * property here (the published document stays open for additions; the check is that the service sends nothing it
 * does not declare). OpenAPI 3.0 specifics are translated for Ajv: `nullable`, `$ref`s into components, allOf of
 * objects merged so strictness holds across them, and the formats (date-time, uuid, binary, …) from ajv-formats.
 *
 * Wiring: test-app.ts hands out supertest agents through `contractChecked`, so a mismatch fails the request's
 * promise, and with it the test that made the request (the test's own expectations are reported first). Other
 * clients (https-client.ts, the station example's proxy) call `contractError`. With FLEET_PKI_CONTRACT_REPORT=<file>, each test
 * process appends a JSON line with its counts and mismatches at exit; FLEET_PKI_CONTRACT_SURVEY=1 in addition lets
 * mismatching responses through (to survey a large change in one run; never in CI).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { recordSecretsIn } from './log-capture';
import { parse } from 'yaml';

/** One response, as a client saw it. */
export interface ObservedResponse {
  method: string;
  /** Absolute URL or path; the query is ignored. */
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON for JSON media types; a string for text; a Buffer for binary bodies when the client kept them. */
  body: unknown;
}

type Schema = Record<string, unknown>;
interface MediaType {
  schema?: Schema;
}
interface Header {
  required?: boolean;
  schema?: Schema;
  $ref?: string;
}
interface ResponseObject {
  description?: string;
  headers?: Record<string, Header>;
  content?: Record<string, MediaType>;
  $ref?: string;
}
interface Operation {
  operationId?: string;
  responses: Record<string, ResponseObject>;
}
export interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema>; headers?: Record<string, Header>; responses?: Record<string, ResponseObject> };
}

/** Headers any HTTP/1.1 response may carry, owned by the transport rather than the API. */
const TRANSPORT_HEADERS = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding']);
/** OpenAPI keywords that are annotations only, or have no JSON Schema counterpart Ajv knows. */
const ANNOTATIONS = new Set(['example', 'examples', 'xml', 'externalDocs', 'discriminator', 'deprecated', 'readOnly', 'writeOnly', 'nullable']);
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SCHEMA_REF = '#/components/schemas/';
const DEFINITIONS_ID = 'openapi-components';

interface Route {
  template: string;
  pattern: RegExp;
  greedy: boolean;
  literalSegments: number;
  operations: Record<string, Operation>;
}

/** The contract: routes, and Ajv validators compiled on first use. */
export class ContractValidator {
  private readonly routes: Route[];
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly spec: Spec) {
    this.routes = Object.entries(spec.paths).flatMap(([template, operations]) => routesOf(template, operations));
    this.ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, strictTuples: false });
    addFormats(this.ajv);
    const definitions: Record<string, Schema> = {};
    for (const [name, schema] of Object.entries(spec.components?.schemas ?? {})) definitions[name] = this.toJsonSchema(schema);
    this.ajv.addSchema({ $id: DEFINITIONS_ID, definitions });
  }

  /**
   * Finds the operation a request addressed: the most specific template for the path as sent, then without a
   * trailing slash (the router ignores one); a last parameter that may hold "/" only when nothing else fits.
   */
  route(method: string, url: string): { template: string; operation?: Operation } | undefined {
    const raw = new URL(url, 'http://contract.invalid').pathname;
    const paths = raw.length > 1 && raw.endsWith('/') ? [raw, raw.slice(0, -1)] : [raw];
    // HEAD is answered as GET without the body (Fastify exposes a HEAD route for every GET).
    const names = method.toLowerCase() === 'head' ? ['head', 'get'] : [method.toLowerCase()];
    let matched: string | undefined;
    for (const greedy of [false, true]) {
      for (const pathname of paths) {
        const candidates = this.routes.filter((route) => route.greedy === greedy && route.pattern.test(pathname));
        candidates.sort((a, b) => b.literalSegments - a.literalSegments);
        for (const route of candidates) {
          matched ??= route.template;
          for (const name of names) if (route.operations[name]) return { template: route.template, operation: route.operations[name] };
        }
      }
    }
    return matched === undefined ? undefined : { template: matched };
  }

  /** Every way the response departs from the contract; empty when it conforms. */
  check(response: ObservedResponse): { operation: string; mismatches: string[] } {
    const found = this.route(response.method, response.url);
    const requestLine = `${response.method.toUpperCase()} ${new URL(response.url, 'http://contract.invalid').pathname}`;
    if (!found?.operation) {
      // No such operation: the service must say so the way it says everything (a 404 problem), and nothing else.
      const operation = `${requestLine} (not in openapi.yaml)`;
      if (response.status === 404 && isProblem(response)) return { operation, mismatches: [] };
      return { operation, mismatches: [`answered ${response.status}, but openapi.yaml has no such operation (a new route? run npm run openapi)`] };
    }
    const operationId = found.operation.operationId ?? `${response.method} ${found.template}`;
    const operation = `${operationId} (${requestLine} → ${response.status})`;
    const declared = this.responseFor(found.operation, response.status);
    if (!declared) {
      const statuses = Object.keys(found.operation.responses).join(', ');
      return { operation, mismatches: [`status ${response.status} is not declared (declared: ${statuses})${problemCode(response)}`] };
    }
    const mismatches = [
      ...this.checkHeaders(declared.response, response),
      ...this.checkContent(operationId, declared.key, declared.response, response),
    ];
    return { operation, mismatches };
  }

  private responseFor(operation: Operation, status: number): { key: string; response: ResponseObject } | undefined {
    for (const key of [String(status), `${String(status)[0]}XX`, 'default']) {
      const response = operation.responses[key];
      if (response) return { key, response: this.resolve(response) };
    }
    return undefined;
  }

  private resolve<T extends { $ref?: string }>(object: T): T {
    if (!object.$ref) return object;
    const [, , section, name] = object.$ref.split('/');
    const target = (this.spec.components as Record<string, Record<string, T>> | undefined)?.[section]?.[name];
    if (!target) throw new Error(`openapi.yaml: unresolvable $ref ${object.$ref}`);
    return this.resolve(target);
  }

  private checkHeaders(declared: ResponseObject, response: ObservedResponse): string[] {
    const mismatches: string[] = [];
    const headers = Object.fromEntries(Object.entries(declared.headers ?? {}).map(([name, header]) => [name.toLowerCase(), this.resolve(header)]));
    for (const [name, header] of Object.entries(headers)) {
      const value = response.headers[name];
      if (value === undefined) {
        if (header.required) mismatches.push(`required header ${name} is missing`);
        continue;
      }
      if (header.schema) {
        const validate = this.ajv.compile(this.toJsonSchema(header.schema));
        const text = Array.isArray(value) ? value.join(', ') : value;
        if (!validate(coerceHeader(text, header.schema))) mismatches.push(`header ${name}: ${JSON.stringify(text)} ${describeErrors(validate.errors)}`);
      }
    }
    for (const name of Object.keys(response.headers)) {
      const lower = name.toLowerCase();
      if (!TRANSPORT_HEADERS.has(lower) && !headers[lower]) mismatches.push(`header ${lower} is sent but not declared`);
    }
    return mismatches;
  }

  private checkContent(operationId: string, status: string, declared: ResponseObject, response: ObservedResponse): string[] {
    const contentType = headerValue(response.headers['content-type']);
    const empty = response.body === undefined || response.body === '' || (Buffer.isBuffer(response.body) && response.body.length === 0);
    const hasBody = contentType !== undefined && !(empty && headerValue(response.headers['content-length']) === '0');
    const content = declared.content ?? {};
    if (!hasBody) {
      return response.method.toUpperCase() === 'HEAD' || Object.keys(content).length === 0 ? [] : ['the body is empty, but the response declares content'];
    }
    const essence = contentType.split(';')[0].trim().toLowerCase();
    const media = content[essence];
    if (!media) return [`media type ${essence} is not declared (declared: ${Object.keys(content).join(', ') || 'none'})`];
    if (!media.schema || response.method.toUpperCase() === 'HEAD') return [];
    const resolved: Schema = this.resolve(media.schema as Schema & { $ref?: string });
    if (resolved.type === 'string' && resolved.format === 'binary') {
      return Buffer.isBuffer(response.body) && response.body.length === 0 ? ['the binary body is empty'] : [];
    }
    if (isJson(essence) && (Buffer.isBuffer(response.body) || typeof response.body === 'string')) return ['a JSON media type, but the body is not JSON'];
    const key = `${operationId} ${status} ${essence}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(this.toJsonSchema(media.schema));
      this.compiled.set(key, validate);
    }
    return validate(response.body) ? [] : [`body ${describeErrors(validate.errors)}`];
  }

  /** OpenAPI 3.0 schema → JSON Schema for Ajv, strict about undeclared properties. */
  toJsonSchema(schema: Schema): Schema {
    if (typeof schema.$ref === 'string') {
      if (!schema.$ref.startsWith(SCHEMA_REF)) throw new Error(`openapi.yaml: unsupported schema $ref ${schema.$ref}`);
      return { $ref: `${DEFINITIONS_ID}#/definitions/${schema.$ref.slice(SCHEMA_REF.length)}` };
    }
    const merged = Array.isArray(schema.allOf) ? this.mergeObjects(schema) : schema;
    const out: Schema = {};
    for (const [key, value] of Object.entries(merged)) {
      if (ANNOTATIONS.has(key) || key.startsWith('x-')) continue;
      if (key === 'properties') out[key] = mapValues(value as Record<string, Schema>, (s) => this.toJsonSchema(s));
      else if ((key === 'items' || key === 'not') && isObject(value)) out[key] = this.toJsonSchema(value);
      else if (key === 'additionalProperties' && isObject(value)) out[key] = this.toJsonSchema(value);
      else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') out[key] = (value as Schema[]).map((s) => this.toJsonSchema(s));
      else out[key] = value;
    }
    if (isObject(out.properties) && out.additionalProperties === undefined) out.additionalProperties = false;
    return merged.nullable === true ? { anyOf: [out, { type: 'null' }] } : out;
  }

  /**
   * allOf whose members are all object schemas ($refs resolved), as one object schema: `additionalProperties: false`
   * on each member would refuse the others' properties. A property named by several members must match each.
   */
  private mergeObjects(schema: Schema): Schema {
    const members = (schema.allOf as Schema[]).map((member) => this.flatten(member));
    if (!members.every((member) => member.type === 'object' || isObject(member.properties))) return schema;
    const { allOf: _allOf, ...rest } = schema;
    const properties: Record<string, Schema[]> = {};
    const required = new Set<string>();
    let additional: unknown = undefined;
    for (const member of members) {
      for (const [name, property] of Object.entries((member.properties as Record<string, Schema> | undefined) ?? {})) (properties[name] ??= []).push(property);
      for (const name of (member.required as string[] | undefined) ?? []) required.add(name);
      if (member.additionalProperties !== undefined && member.additionalProperties !== false) additional = member.additionalProperties;
    }
    return {
      ...rest,
      type: 'object',
      properties: mapValues(properties, (list) => (list.length === 1 ? list[0] : { allOf: list })),
      ...(required.size ? { required: [...required] } : {}),
      ...(additional !== undefined ? { additionalProperties: additional } : {}),
    };
  }

  /** A member of an allOf with its $ref resolved and its own allOf merged. */
  private flatten(schema: Schema): Schema {
    const resolved: Schema = typeof schema.$ref === 'string' ? this.resolve<Schema & { $ref?: string }>({ $ref: schema.$ref }) : schema;
    return Array.isArray(resolved.allOf) ? this.mergeObjects(resolved) : resolved;
  }
}

function routesOf(template: string, operations: Record<string, Operation>): Route[] {
  const own = Object.fromEntries(Object.entries(operations).filter(([method]) => HTTP_METHODS.includes(method)));
  const segments = template.split('/').filter(Boolean);
  const literalSegments = segments.filter((s) => !s.startsWith('{')).length;
  const build = (greedy: boolean) => {
    const parts = segments.map((segment, i) => {
      if (!segment.startsWith('{')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return greedy && i === segments.length - 1 ? '.*' : '[^/]+';
    });
    return new RegExp(`^/${parts.join('/')}$`);
  };
  const routes: Route[] = [{ template, pattern: build(false), greedy: false, literalSegments, operations: own }];
  // A last path parameter may carry "/" (OCSP's base64 request): tried only when nothing else matched.
  if (segments.at(-1)?.startsWith('{')) routes.push({ template, pattern: build(true), greedy: true, literalSegments, operations: own });
  return routes;
}

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mapValues<A, B>(record: Record<string, A>, f: (value: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, f(value)]));
}

function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function isProblem(response: ObservedResponse): boolean {
  return headerValue(response.headers['content-type'])?.startsWith('application/problem+json') === true;
}

function problemCode(response: ObservedResponse): string {
  const code = isObject(response.body) ? response.body.code : undefined;
  return typeof code === 'string' ? `; problem code ${code}` : '';
}

/** Header values are text; give the schema a number where it expects one. */
function coerceHeader(text: string, schema: Schema): unknown {
  if ((schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  const lines = (errors ?? [])
    // anyOf (nullable) repeats each failure once per branch; the branch summaries add nothing.
    .filter((e) => e.keyword !== 'anyOf' && !(e.keyword === 'type' && e.params.type === 'null'))
    .map((e) => {
      const at = e.instancePath || '(root)';
      if (e.keyword === 'additionalProperties') return `${at}: property "${String(e.params.additionalProperty)}" is not declared`;
      if (e.keyword === 'enum') return `${at}: ${JSON.stringify(e.data)} is not one of ${JSON.stringify(e.params.allowedValues)}`;
      return `${at}: ${e.message ?? e.keyword}${e.keyword === 'format' || e.keyword === 'type' ? ` (got ${JSON.stringify(e.data)?.slice(0, 80)})` : ''}`;
    });
  return [...new Set(lines)].slice(0, 8).join('; ') || 'does not match';
}

/** The repository root: the nearest parent directory with package.json and openapi.yaml. */
function repositoryRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'openapi.yaml'))) return dir;
  }
  throw new Error('response validator: openapi.yaml not found above ' + __dirname);
}

let shared: ContractValidator | undefined;
/** The validator of the committed openapi.yaml (read once per process). */
export function contract(): ContractValidator {
  shared ??= new ContractValidator(parse(fs.readFileSync(path.join(repositoryRoot(), 'openapi.yaml'), 'utf8')) as Spec);
  return shared;
}

/** What this process checked: counts per operation and status, and every mismatch. */
export const contractTally = { validated: 0, exercised: new Map<string, number>(), mismatches: [] as string[] };

export class ContractMismatchError extends Error {
  override name = 'ContractMismatchError';
}

/** Checks one response and counts it; the mismatches as an error naming the operation, or undefined. */
export function contractError(response: ObservedResponse, validator: ContractValidator = contract()): ContractMismatchError | undefined {
  const { operation, mismatches } = validator.check(response);
  // The tally is of openapi.yaml; the validator's own tests use other contracts.
  const counted = validator === shared;
  if (counted) {
    contractTally.validated++;
    const key = operation.replace(/ \(.*\)$/, '') + ` ${response.status}`;
    contractTally.exercised.set(key, (contractTally.exercised.get(key) ?? 0) + 1);
  }
  if (!mismatches.length) return undefined;
  const message = `openapi.yaml contract: ${operation}: ${mismatches.join(' | ')}`;
  if (counted) contractTally.mismatches.push(message);
  return process.env.FLEET_PKI_CONTRACT_SURVEY === '1' ? undefined : new ContractMismatchError(message);
}

/** supertest's Test, as far as the check needs it (its typings keep `assert` private). */
interface CheckedTest {
  method: string;
  url: string;
  assert(resError: unknown, res: SupertestResponse | undefined, fn?: (err: unknown, res: unknown) => void): void;
}
interface SupertestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text?: string;
  type?: string;
}

/** Marks a supertest request as checked, by this validator. */
const CHECKED = Symbol('fleet-pki-contract-checked');
const patched = new WeakSet<object>();

/**
 * Makes every request of a supertest agent checked against the contract. A mismatch becomes the request's error,
 * after the test's own expectations (a failed `.expect(200)` is still what the test reports).
 */
export function contractChecked<A extends object>(agent: A, Test: { prototype: object }, validator?: ContractValidator): A {
  if (!patched.has(Test.prototype)) {
    patched.add(Test.prototype);
    const prototype = Test.prototype as CheckedTest;
    const original = prototype.assert;
    prototype.assert = function (this: CheckedTest & { [CHECKED]?: ContractValidator }, resError, res, fn) {
      const checkedBy = this[CHECKED];
      if (res) {
        // Every secret sent or answered is one the log scan of the run looks for (test/support/log-capture.ts).
        const sent = this as unknown as { _header?: Record<string, unknown>; _data?: unknown };
        recordSecretsIn(sent._header, sent._data);
        recordSecretsIn(res.headers, bodyOf(res));
      }
      if (!checkedBy || !res) return original.call(this, resError, res, fn);
      const mismatch = contractError({ method: this.method, url: this.url, status: res.status, headers: res.headers, body: bodyOf(res) }, checkedBy);
      return original.call(this, resError, res, (err, r) => fn?.call(this, err ?? mismatch ?? null, r));
    };
  }
  for (const method of ['get', 'post', 'put', 'patch', 'delete', 'del', 'head', 'options']) {
    const create = (agent as Record<string, unknown>)[method];
    if (typeof create !== 'function') continue;
    (agent as Record<string, unknown>)[method] = (...args: unknown[]) => {
      const test = create.apply(agent, args) as { [CHECKED]?: ContractValidator };
      test[CHECKED] = validator ?? contract();
      return test;
    };
  }
  return agent;
}

function bodyOf(res: SupertestResponse): unknown {
  if (Buffer.isBuffer(res.body)) return res.body;
  if (res.type && isJson(res.type)) return res.body;
  return res.text;
}

process.on('exit', () => {
  const file = process.env.FLEET_PKI_CONTRACT_REPORT;
  if (!file || contractTally.validated === 0) return;
  const line = {
    suite: path.basename(process.argv[1] ?? ''),
    validated: contractTally.validated,
    mismatches: contractTally.mismatches,
    exercised: Object.fromEntries(contractTally.exercised),
  };
  fs.appendFileSync(file, JSON.stringify(line) + '\n');
});
