import { STATUS_CODES } from 'node:http';
import { INestApplication } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { OperationObject, ParameterObject, ReferenceObject, RequestBodyObject, ResponseObject, SchemaObject } from '@nestjs/swagger';
import { ERROR_CODES, Errors } from './common/errors';
import {
  CERTIFICATE_JWT_SCHEME,
  declaredProblems,
  PLAIN_TEXT_ERRORS_EXTENSION,
  PROBLEM_EXTRAS,
  ProblemDeclaration,
  problemCodesByStatus,
  ProblemDto,
  PUBLIC_OPERATION_EXTENSION,
  REQUEST_CONTENT_EXTENSION,
  RESPONSE_HEADERS,
  responseHeaders,
  SECURITY_HEADER_NAMES,
} from './common/openapi';
import { OCSP_OPENAPI_PATHS } from './revocation/ocsp-http';
import { SOURCE_LIMIT_EXEMPT_PATHS } from './auth/request-limits';

const TAGS: [name: string, description: string][] = [
  ['authorities', 'Certificate authorities: self-signed roots and intermediates, their certificates and chains'],
  ['revocation', 'Certificate revocation lists and the OCSP responder, published without authentication'],
  ['certificates', 'Issuing certificates from CSRs, searching and revoking them'],
  ['api-keys', 'API keys and their roles (admin only)'],
  ['audit', 'The hash-chained audit log'],
  ['claims', 'Factory claims: quotas, allow-lists and claim certificates (admin)'],
  ['provisioning', 'The exchange of a claim certificate for a device certificate, called by factory stations'],
  ['aws-integration', 'Called by the AWS IoT Lambda handlers (integrations/aws-lambda/): certificate provider and pre-authentication status'],
  ['rotation', 'Rotation campaigns: renewing a set of certificates by a deadline'],
  ['tpm', 'Hardware-rooted identity: the allow-list of TPM manufacturer roots (EK-issuing CAs) for attested enrollment'],
  ['est', 'EST (RFC 7030) enrollment under /.well-known/est, and its labels (admin); EST routes answer errors as text/plain'],
  ['fleet', 'Fleet security audits: findings and remediations'],
  ['iot', 'AWS IoT Core: targets (accounts and regions), CA registration for JITR/JITP and API-mode devices, device moves'],
  ['secure-elements', 'Secure-element manifests: pre-provisioned device identities imported from vendor manifests (docs/secure-elements.md)'],
  ['jobs', 'Outbox jobs: dead jobs listed and retried after their cause is fixed'],
  ['health', 'Liveness, readiness and Prometheus metrics'],
  ['setup', 'Self-check of the deployment (admin): database, key backends, AWS, JITR settings, public TLS'],
];

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const PROBLEM_TYPE = 'application/problem+json';
const INTERNAL_ERROR_RESPONSE = 'InternalError';
/** The 429 of a request rate limit (docs/limits.md), shared by every operation whose only 429 it is. */
const RATE_LIMITED_RESPONSE = 'RateLimited';

/** The words before the codes in a problem response's description. */
const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request',
  401: 'Not authenticated',
  403: 'Authenticated, but not allowed',
  404: 'Not found',
  409: 'Conflict with the current state',
  413: 'Body larger than the limit',
  429: 'Too many requests: a rate limit (docs/limits.md); retry after Retry-After seconds',
  415: 'Unsupported body media type',
  422: 'Well-formed but refused by policy',
  502: 'AWS refused a request the service made (with AWS’s reason)',
  503: 'A dependency is unavailable or throttling; retry later',
};

/** Builds the OpenAPI document from the controllers' decorators; operationIds are the method names. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Fleet PKI')
    .setDescription(
      'Certificate authority and provisioning service for IoT fleets on AWS IoT Core. ' +
        'Errors are RFC 9457 application/problem+json bodies with a stable `code`; each operation lists the codes it can answer with. ' +
        'Every answer of the framework carries X-Request-Id.',
    )
    .setVersion('1.0.0')
    // Relative: the API is on the host that serves this document (Swagger UI at /docs).
    .addServer('/', 'This Fleet PKI instance')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'fpk API key', description: 'API key: fpk_<prefix>.<secret>' })
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'Factory stations and devices: a JWT signed with the key of a certificate this service issued (the claim certificate, or the device’s own), ES256, ES384 or RS256, the certificate in the x5c header, aud = the route’s URL, exp at most 5 minutes ahead, a single-use jti. Mutual TLS with the same certificate is the alternative when the service terminates TLS.',
      },
      CERTIFICATE_JWT_SCHEME,
    );
  for (const [name, description] of TAGS) builder.addTag(name, description);
  const config = builder.build();
  // The service is not published under a license, so there is no license URL to give.
  config.info.license = { name: 'UNLICENSED' };
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controllerKey: string, methodKey: string) => methodKey,
    extraModels: [ProblemDto],
  });
  applyPublicSecurity(document);
  const handlers = routeHandlers(app);
  const components = (document.components ??= {});
  components.headers = { ...RESPONSE_HEADERS };
  components.responses = { [INTERNAL_ERROR_RESPONSE]: internalErrorResponse(), [RATE_LIMITED_RESPONSE]: rateLimitedResponse() };
  for (const { path, operation } of operations(document)) {
    const handler = handlers.get(operation.operationId ?? '');
    if (!handler) throw new Error(`OpenAPI: no route handler named ${operation.operationId}`);
    const extensions = operation as OperationObject & Record<string, unknown>;
    const plainText = extensions[PLAIN_TEXT_ERRORS_EXTENSION] === true;
    delete extensions[PLAIN_TEXT_ERRORS_EXTENSION];
    const requestContent = extensions[REQUEST_CONTENT_EXTENSION] as RequestBodyObject['content'] | undefined;
    delete extensions[REQUEST_CONTENT_EXTENSION];
    if (requestContent) {
      if (!operation.requestBody || '$ref' in operation.requestBody) throw new Error(`OpenAPI: ${operation.operationId} declares per-media-type bodies but no request body`);
      operation.requestBody.content = requestContent;
    }
    // Every route but the health probes counts against the source-address limit (auth/request-limits.ts).
    const rateLimited = SOURCE_LIMIT_EXEMPT_PATHS.has(path) ? [] : [Errors.rateLimited];
    addProblemResponses(operation, [...declaredProblems(handler), ...rateLimited], plainText);
    // The framework answers every request with the request id, the security headers and a Cache-Control (no-store
    // unless the route sets its own) (app.factory.ts, common/security-headers.ts).
    for (const response of Object.values(operation.responses) as (ResponseObject | ReferenceObject)[]) {
      if ('$ref' in response) continue;
      response.headers = { ...responseHeaders('X-Request-Id', 'Cache-Control', ...SECURITY_HEADER_NAMES), ...response.headers };
    }
  }
  requestDefaultsIntoDescriptions(document);
  nullableEnumsListNull(document);
  document.paths = withOcspPaths(document.paths);
  return document;
}

function* operations(document: OpenAPIObject): Generator<{ path: string; method: string; operation: OperationObject }> {
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (operation) yield { path, method, operation };
    }
  }
}

/** The controllers' route handlers by method name (= operationId, unique across the API). */
function routeHandlers(app: INestApplication): Map<string, object> {
  const handlers = new Map<string, object>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const prototype = (wrapper.metatype as { prototype?: Record<string, unknown> } | null)?.prototype;
      if (!prototype) continue;
      for (const name of Object.getOwnPropertyNames(prototype)) {
        const handler = prototype[name];
        // Route handlers carry Nest's 'path' metadata (@Get(), @Post(), …).
        if (name === 'constructor' || typeof handler !== 'function' || Reflect.getMetadata('path', handler) === undefined) continue;
        if (handlers.has(name) && handlers.get(name) !== handler) throw new Error(`OpenAPI: two route handlers are named ${name}; operationIds must be unique`);
        handlers.set(name, handler);
      }
    }
  }
  return handlers;
}

/**
 * The problem answers of an operation: what its handler declares (ApiProblems), plus what the framework answers for
 * the route's shape: a body can be malformed, nested too deep or hold too many values (400), too large (413) or of
 * another media type (415); parameters can fail validation (400), path parameters can be undecodable (400) or too
 * long (414), a cursor can be unreadable (400); and anything can fail unexpectedly (500). Each status gets
 * a schema whose `code` enum is exactly its codes, with the extra members those codes carry.
 */
function addProblemResponses(operation: OperationObject, declared: ProblemDeclaration[], plainText = false): void {
  const framework: ProblemDeclaration[] = [];
  const body = operation.requestBody && !('$ref' in operation.requestBody) ? operation.requestBody : undefined;
  if (body) {
    framework.push(Errors.payloadTooLarge, Errors.unsupportedMediaType, Errors.validation);
    // A JSON body is bounded in shape before validation (common/json-shape.ts).
    if (body.content['application/json']) framework.push(Errors.malformedJson, Errors.bodyTooDeep, Errors.bodyTooWide);
  }
  const parameters = (operation.parameters ?? []) as ParameterObject[];
  if (parameters.length) framework.push(Errors.validation);
  // The router refuses a path parameter it cannot decode or that is longer than it takes (common/http-errors.ts).
  if (parameters.some((parameter) => parameter.in === 'path')) framework.push(Errors.invalidUrl, Errors.uriTooLong);
  if (parameters.some((parameter) => parameter.in === 'query' && parameter.name === 'cursor')) framework.push(Errors.invalidCursor);
  const byStatus = problemCodesByStatus([...framework, ...declared]);
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    if (status === 500) continue;
    const codes = ERROR_CODES.filter((code) => byStatus.get(status)!.has(code));
    if (codes.length === 1 && codes[0] === Errors.rateLimited.code && !plainText) {
      operation.responses[String(status)] = { $ref: `#/components/responses/${RATE_LIMITED_RESPONSE}` };
      continue;
    }
    operation.responses[String(status)] = plainText ? plainTextProblemResponse(status, codes) : problemResponse(status, codes);
  }
  operation.responses['500'] = plainText ? plainTextProblemResponse(500, [Errors.internal.code]) : { $ref: `#/components/responses/${INTERNAL_ERROR_RESPONSE}` };
}

function problemResponse(status: number, codes: string[]): ResponseObject {
  const extras: Record<string, SchemaObject | ReferenceObject> = {};
  for (const code of codes) Object.assign(extras, PROBLEM_EXTRAS[code]);
  const throttled = codes.some((code) => PROBLEM_EXTRAS[code]?.retryAfterSeconds);
  return {
    description: `${PROBLEM_DESCRIPTIONS[status] ?? STATUS_CODES[status] ?? 'Error'}: ${codes.join(', ')}`,
    headers: responseHeaders('Cache-Control', ...SECURITY_HEADER_NAMES, ...(status === 401 ? (['WWW-Authenticate'] as const) : []), ...(throttled ? (['Retry-After'] as const) : [])),
    content: {
      [PROBLEM_TYPE]: {
        schema: {
          allOf: [
            { $ref: '#/components/schemas/ProblemDto' },
            { type: 'object', required: ['code'], properties: { code: { type: 'string', enum: codes }, ...extras } },
          ],
        },
      },
    },
  };
}

/**
 * A problem answered as text by default (ApiPlainTextErrors: EST, RFC 7030 §4.2.3): "<CODE>: <detail>", one line; a
 * client whose Accept names application/problem+json gets the problem+json body instead (common/problem.filter.ts).
 */
function plainTextProblemResponse(status: number, codes: string[]): ResponseObject {
  const response = status === 500 ? internalErrorResponse() : problemResponse(status, codes);
  return {
    ...response,
    description: `${response.description} (text/plain "<CODE>: <detail>"; application/problem+json when the request's Accept asks for it)`,
    content: { 'text/plain': { schema: { type: 'string', pattern: `^(${codes.join('|')}): `, example: `${codes[0]}: what was wrong` } }, ...response.content },
  };
}

function rateLimitedResponse(): ResponseObject {
  const response = problemResponse(429, [Errors.rateLimited.code]);
  return { ...response, headers: { ...responseHeaders('X-Request-Id'), ...response.headers } };
}

function internalErrorResponse(): ResponseObject {
  return {
    description: `Unexpected failure: ${Errors.internal.code} (quote the request id when reporting it)`,
    headers: responseHeaders('X-Request-Id', 'Cache-Control', ...SECURITY_HEADER_NAMES),
    content: {
      [PROBLEM_TYPE]: {
        schema: {
          allOf: [{ $ref: '#/components/schemas/ProblemDto' }, { type: 'object', required: ['code'], properties: { code: { type: 'string', enum: [Errors.internal.code] } } }],
        },
      },
    },
  };
}

/**
 * In request bodies a `default` is what the service assumes when the field is left out. Client generators that
 * read `default` as "always present" (openapi-typescript makes such properties required, except in schemas written
 * inline under requestBody) would then demand every defaulted field, so in schemas only requests use, the default
 * moves into the description ("Default: `local`.") and the field stays optional.
 */
function requestDefaultsIntoDescriptions(document: OpenAPIObject): void {
  const schemas = (document.components?.schemas ?? {}) as Record<string, SchemaObject>;
  const requests = new Set<string>();
  const responses = new Set<string>();
  for (const { operation } of operations(document)) {
    const body = operation.requestBody && !('$ref' in operation.requestBody) ? operation.requestBody : undefined;
    if (body) referencedSchemas(body, schemas, requests);
    referencedSchemas(operation.responses, schemas, responses);
  }
  for (const name of requests) {
    if (responses.has(name)) continue;
    for (const property of Object.values(schemas[name].properties ?? {}) as SchemaObject[]) {
      if (!('default' in property)) continue;
      const text = `Default: \`${JSON.stringify(property.default).replace(/^"|"$/g, '')}\`.`;
      property.description = property.description ? `${property.description}. ${text}`.replace(/\.\. /, '. ') : text;
      delete property.default;
    }
  }
}

/**
 * OpenAPI 3.0.3: `nullable` adds null to the `type`, but an `enum` still limits the values, so a nullable enum must
 * list null itself (@nestjs/swagger leaves it out).
 */
function nullableEnumsListNull(value: unknown): void {
  if (Array.isArray(value)) return value.forEach(nullableEnumsListNull);
  if (typeof value !== 'object' || value === null) return;
  const schema = value as SchemaObject;
  if (schema.nullable === true && Array.isArray(schema.enum) && !schema.enum.includes(null)) schema.enum = [...schema.enum, null];
  for (const child of Object.values(value)) nullableEnumsListNull(child);
}

/** Adds the names of the component schemas `value` refers to, transitively, to `into`. */
function referencedSchemas(value: unknown, schemas: Record<string, SchemaObject>, into: Set<string>): void {
  if (Array.isArray(value)) return value.forEach((item) => referencedSchemas(item, schemas, into));
  if (typeof value !== 'object' || value === null) return;
  const ref = (value as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
    const name = ref.slice('#/components/schemas/'.length);
    if (into.has(name)) return;
    into.add(name);
    referencedSchemas(schemas[name], schemas, into);
    return;
  }
  for (const child of Object.values(value)) referencedSchemas(child, schemas, into);
}

/**
 * The OCSP responder's operations, served ahead of the framework (revocation/ocsp-http.ts) and so described by
 * hand, placed after the other revocation routes (as the controllers would have placed them).
 */
function withOcspPaths(paths: OpenAPIObject['paths']): OpenAPIObject['paths'] {
  const entries = Object.entries(paths);
  const isRevocation = ([, item]: (typeof entries)[number]) => HTTP_METHODS.some((method) => item[method]?.tags?.includes('revocation'));
  const lastRevocation = entries.map(isRevocation).lastIndexOf(true);
  const position = lastRevocation < 0 ? entries.length : lastRevocation + 1;
  return Object.fromEntries([...entries.slice(0, position), ...Object.entries(OCSP_OPENAPI_PATHS), ...entries.slice(position)]);
}

/**
 * @Public() routes carry a marker extension; they get `security: []` (no API key), which @nestjs/swagger
 * cannot express. Every other route must document bearer auth (@ApiSecured()), so the document cannot
 * silently show a protected route as open or the reverse.
 */
function applyPublicSecurity(document: OpenAPIObject): void {
  for (const { path, method, operation: item } of operations(document)) {
    const operation = item as OperationObject & Record<string, unknown>;
    const name = `${method.toUpperCase()} ${path} (${operation.operationId})`;
    const secured = operation.security?.some((requirement) => 'bearer' in requirement) ?? false;
    if (operation[PUBLIC_OPERATION_EXTENSION]) {
      if (secured) throw new Error(`OpenAPI: ${name} is @Public() but documents bearer auth`);
      delete operation[PUBLIC_OPERATION_EXTENSION];
      // A route with its own scheme (certificate JWT) keeps it, with {} for the mutual TLS alternative.
      operation.security = operation.security?.length ? [...operation.security, {}] : [];
    } else if (!secured) {
      throw new Error(`OpenAPI: ${name} is neither @Public() nor documented with @ApiSecured()`);
    }
  }
}
