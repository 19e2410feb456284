/** The vocabulary of the OpenAPI contract: problems, their codes and members, response headers (docs/contract.md). */
import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiParam, ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { HeaderObject, ReferenceObject, SchemaObject } from '@nestjs/swagger';
import { ERROR_CODES, ErrorKind, Errors } from './errors';

/** RFC 9457 problem details, as every 4xx/5xx of this API is sent. Each operation narrows `code` to its own codes. */
export class ProblemDto {
  @ApiProperty({ description: 'URN naming the problem kind (the code, lower-case, dashes)', pattern: '^urn:fleet-pki:problem:[a-z0-9-]+$', example: 'urn:fleet-pki:problem:certificate-already-revoked' })
  type: string;
  @ApiProperty({ description: 'HTTP reason phrase of the status', example: 'Conflict' }) title: string;
  @ApiProperty({ type: 'integer', minimum: 400, maximum: 599, example: 409 }) status: number;
  @ApiProperty({ description: 'What went wrong, for humans', example: 'certificate 6f1c… is already revoked' }) detail: string;
  @ApiProperty({ enum: ERROR_CODES, enumName: 'ErrorCode', description: 'Stable machine-readable error code', example: 'CERTIFICATE_ALREADY_REVOKED' }) code: string;
  @ApiPropertyOptional({ description: 'The request id (also in the X-Request-Id response header)', example: 'a3c9e0d2-…' }) instance?: string;
  @ApiPropertyOptional({ type: [String], description: 'VALIDATION_FAILED: the findings, one per bad field' }) errors?: string[];
}

/**
 * Members a problem carries beyond ProblemDto, by code (the DomainError's `extra`). An operation's problem schema
 * declares those of the codes it can answer; the e2e response validator refuses any member not declared here.
 */
/** Carried by a failure after the key backend made a new key: whether that key was scheduled for deletion (keys/key-manager.ts). */
const NEW_KEY_CLEANUP: Record<string, SchemaObject> = {
  newKeyCleanup: { type: 'string', enum: ['done', 'failed'], description: 'A key made for this request was scheduled for deletion (done), or could not be (failed: see the log)' },
};

export const PROBLEM_EXTRAS: Readonly<Record<string, Record<string, SchemaObject | ReferenceObject>>> = {
  [Errors.renewalNotYetAllowed.code]: { renewableFrom: { type: 'string', format: 'date-time', description: 'When the renewal window opens' } },
  [Errors.policyFindings.code]: {
    findings: { type: 'array', items: { $ref: '#/components/schemas/PolicyFindingDto' }, description: 'The findings that refused the policy (not accepted)' },
  },
  [Errors.notReady.code]: {
    checks: { type: 'object', additionalProperties: { type: 'string' }, description: 'The state of each check: ok, or what fails', example: { database: 'ok' } },
  },
  [Errors.iotConflict.code]: {
    awsError: { type: 'string', description: 'The AWS IoT exception name', example: 'ResourceAlreadyExistsException' },
    resourceId: { type: 'string', description: 'The id of the existing resource, when AWS names it' },
    resourceArn: { type: 'string', description: 'The existing resource, when AWS names it' },
  },
  [Errors.awsLimitExceeded.code]: {
    awsService: { type: 'string', enum: ['iot', 'kms'], description: 'The AWS service whose limit is reached' },
    awsError: { type: 'string', description: 'The AWS exception name', example: 'LimitExceededException' },
    awsOperation: { type: 'string', description: 'The AWS operation refused', example: 'RegisterCACertificate' },
    ...NEW_KEY_CLEANUP,
  },
  [Errors.kmsNewKeyNotAuthorized.code]: {
    retryAfterSeconds: { type: 'integer', minimum: 0, description: 'As the Retry-After header' },
    awsError: { type: 'string', description: 'What AWS KMS still answered', example: 'AccessDeniedException' },
    awsOperation: { type: 'string', description: 'The AWS KMS operation refused', example: 'GetPublicKey' },
    ...NEW_KEY_CLEANUP,
  },
  [Errors.iotRefused.code]: { awsError: { type: 'string', description: 'The AWS IoT exception name', example: 'InvalidRequestException' } },
  [Errors.iotThrottled.code]: { retryAfterSeconds: { type: 'integer', minimum: 0, description: 'As the Retry-After header' } },
  [Errors.useClaimRevocation.code]: { claimId: { type: 'string', format: 'uuid', nullable: true, description: 'The claim whose claim certificate this is: revoke it with POST /v1/claims/{claimId}/revoke' } },
  [Errors.idempotencyRequestInProgress.code]: { retryAfterSeconds: { type: 'integer', minimum: 0, description: 'As the Retry-After header' } },
  [Errors.allowlistUploadsBusy.code]: { retryAfterSeconds: { type: 'integer', minimum: 0, description: 'As the Retry-After header' } },
  [Errors.keyBackendThrottled.code]: { retryAfterSeconds: { type: 'integer', minimum: 0, description: 'As the Retry-After header' }, ...NEW_KEY_CLEANUP },
  [Errors.rateLimited.code]: {
    retryAfterSeconds: { type: 'integer', minimum: 1, description: 'As the Retry-After header' },
    rateLimit: { type: 'string', enum: ['source', 'api-key', 'claim', 'station'], description: 'The limit reached (docs/limits.md)' },
  },
  [Errors.keyBackendUnavailable.code]: NEW_KEY_CLEANUP,
  [Errors.authorityKeyUnusable.code]: NEW_KEY_CLEANUP,
  [Errors.kmsKeyNotSuitable.code]: NEW_KEY_CLEANUP,
};

/** IMF-fixdate (RFC 9110 §5.6.7), as Date.prototype.toUTCString writes it. */
const HTTP_DATE = '^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$';

/**
 * Response headers, declared once under components/headers and referenced by name (`responseHeaders`). The e2e
 * response validator refuses a header the service sends without declaring it for that response.
 */
export const RESPONSE_HEADERS = {
  'X-Request-Id': {
    required: true,
    description: 'The request id, in logs and audit events: the caller’s X-Request-Id when it is 1-128 of A-Z a-z 0-9 . _ : -, else a new UUID',
    schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
  },
  'WWW-Authenticate': { required: true, description: 'The scheme to authenticate with (RFC 6750)', schema: { type: 'string', example: 'Bearer' } },
  'Retry-After': { required: false, description: 'With a throttling code: seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } },
  'Cache-Control': { required: true, description: 'How long HTTP caches may keep the answer; `no-store` on every problem', schema: { type: 'string', example: 'public, max-age=60' } },
  ETag: { required: false, description: 'Validator of the answer, for conditional requests', schema: { type: 'string' } },
  'Last-Modified': { required: false, description: 'When the answer was produced (thisUpdate), HTTP-date', schema: { type: 'string', pattern: HTTP_DATE, example: 'Wed, 21 Oct 2026 07:28:00 GMT' } },
  Expires: { required: false, description: 'When HTTP caches must stop using the answer, HTTP-date', schema: { type: 'string', pattern: HTTP_DATE, example: 'Wed, 21 Oct 2026 07:29:00 GMT' } },
  Location: { required: false, description: 'The resource the request created', schema: { type: 'string', example: '/v1/claims/6f1c…' } },
  'X-Claim-Id': { required: false, description: 'With a PKCS #12 answer (?format=p12): the id of the claim created', schema: { type: 'string', format: 'uuid' } },
  'Content-Disposition': { required: false, description: 'A download: the file name to save it under', schema: { type: 'string', example: 'attachment; filename="3f9a….pem"' } },
  'Content-Transfer-Encoding': {
    required: true,
    description: 'EST (RFC 7030 §4): the body is base64 (lines of 64 characters)',
    schema: { type: 'string', enum: ['base64'] },
  },
  'X-Content-Type-Options': { required: true, description: 'On every answer: browsers must not guess another type than Content-Type', schema: { type: 'string', enum: ['nosniff'] } },
  'Strict-Transport-Security': {
    required: false,
    description: 'On every answer when the service terminates TLS itself (TLS_CERT_FILE): browsers keep to HTTPS for a year',
    schema: { type: 'string', enum: ['max-age=31536000'] },
  },
} satisfies Record<string, HeaderObject>;
export type ResponseHeaderName = keyof typeof RESPONSE_HEADERS;

/** The headers of common/security-headers.ts, which every answer carries (HSTS only over TLS). */
export const SECURITY_HEADER_NAMES = ['X-Content-Type-Options', 'Strict-Transport-Security'] as const satisfies readonly ResponseHeaderName[];

/** A response's `content` for binary files (certificates, PKCS #7, PKCS #12): each media type, a binary string. */
export function binaryContent(...mediaTypes: string[]): Record<string, { schema: SchemaObject }> {
  return Object.fromEntries(mediaTypes.map((mediaType) => [mediaType, { schema: { type: 'string', format: 'binary' } }]));
}

/** References to declared response headers, for a response's `headers`. */
export function responseHeaders(...names: ResponseHeaderName[]): Record<string, ReferenceObject> {
  return Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));
}

/** Security scheme of the x5c JWTs signed with a certificate's key: stations (claim certificate) and devices (their own). */
export const CERTIFICATE_JWT_SCHEME = 'certificateJwt';

/**
 * What an operation declares it can refuse with: an error kind (`Errors.authorityNotFound`), a list of them, or, for
 * a coarse declaration, a bare HTTP status (every code of that status).
 */
export type ProblemDeclaration = number | ErrorKind | readonly ProblemDeclaration[];

const issuer = [Errors.authorityNotFound, Errors.authorityNotActive, Errors.authorityPending, Errors.authorityExpired];
const signing = [Errors.keyBackendNotConfigured, Errors.keyBackendUnavailable, Errors.keyBackendThrottled, Errors.authorityKeyUnusable, Errors.authorityOffline];

/** Codes that come from one place, for ApiProblems: declare the group where a route goes through that place. */
export const ProblemGroups = {
  /** Reading a PKCS #10 request and its key (pki/csr.ts, pki/key-policy.ts). */
  csr: [Errors.invalidCsr, Errors.csrSignatureInvalid, Errors.weakSignatureAlgorithm, Errors.invalidSubject, Errors.unsupportedKey, Errors.cryptoThreadsUnavailable],
  /** An authority that is to sign something new (AuthoritiesService.issuer). */
  issuer,
  /** Signing with an authority's key, in the local key store, AWS KMS or a PKCS #11 token (keys/). */
  signing,
  /** Making (or adopting) the key of a new authority. */
  keyCreation: [...signing, Errors.kmsKeyNotSuitable, Errors.keySpecNotSupported, Errors.pkcs11KeyNotSuitable, Errors.keySpecMismatch, Errors.authorityKeyInUse, Errors.kmsNewKeyNotAuthorized, Errors.awsLimitExceeded],
  /** Issuing an end-entity certificate under a profile (CertificatesService.issue), once the CSR is read. */
  issuance: [...issuer, Errors.authorityIsRoot, Errors.leafIssuanceNotAllowed, Errors.authorityUsageMismatch, Errors.profileNotFound, Errors.validityTooLong, Errors.invalidSubject, Errors.sanNotAllowed, Errors.keyNotAllowed, ...signing],
  /** A call to AWS IoT made while the request waits (iot/iot-errors.ts), or AWS IoT not configured. */
  iotCall: [Errors.iotNotConfigured, Errors.iotConflict, Errors.iotRefused, Errors.iotThrottled, Errors.iotUnavailable, Errors.awsLimitExceeded],
  /** Authentication by a certificate this service issued: mutual TLS or an x5c JWT (certificates/certificate-authenticator.ts). */
  certificateAuth: [Errors.unauthenticated, Errors.tokenInvalid, Errors.tokenSignatureInvalid, Errors.tokenExpired, Errors.tokenAudienceMismatch, Errors.tokenReplayed],
} as const satisfies Record<string, readonly ErrorKind[]>;

const PROBLEMS_METADATA = 'fleet-pki:openapi-problems';

/** The codes of a declaration list, by status. */
export function problemCodesByStatus(declarations: readonly ProblemDeclaration[]): Map<number, Set<string>> {
  const byStatus = new Map<number, Set<string>>();
  const add = (status: number, code: string) => {
    if (!byStatus.has(status)) byStatus.set(status, new Set());
    byStatus.get(status)!.add(code);
  };
  const visit = (declaration: ProblemDeclaration): void => {
    if (typeof declaration === 'number') {
      const kinds = Object.values(Errors).filter((kind) => kind.status === declaration);
      if (!kinds.length) throw new Error(`ApiProblems: no error code has HTTP status ${declaration}`);
      for (const kind of kinds) add(kind.status, kind.code);
    } else if (typeof declaration === 'function') {
      add(declaration.status, declaration.code);
    } else {
      declaration.forEach(visit);
    }
  };
  declarations.forEach(visit);
  return byStatus;
}

/**
 * Documents the problem+json answers of a route: the codes it can answer with (their statuses follow). Repeatable.
 * The generic ones of the route's shape (a JSON body, parameters, a cursor) are added by buildOpenApiDocument.
 */
export function ApiProblems(...declarations: ProblemDeclaration[]): MethodDecorator {
  problemCodesByStatus(declarations); // fail at start-up on a status no code has
  return (_target, _key, descriptor) => {
    const previous = (Reflect.getMetadata(PROBLEMS_METADATA, descriptor.value as object) as ProblemDeclaration[] | undefined) ?? [];
    Reflect.defineMetadata(PROBLEMS_METADATA, [...previous, ...declarations], descriptor.value as object);
    return descriptor;
  };
}

/** The problem declarations of a route handler (ApiProblems). */
export function declaredProblems(handler: object): ProblemDeclaration[] {
  return (Reflect.getMetadata(PROBLEMS_METADATA, handler) as ProblemDeclaration[] | undefined) ?? [];
}

/** A route that needs an API key: documents bearer auth and the 401/403 answers. */
export function ApiSecured(): MethodDecorator {
  return applyDecorators(ApiBearerAuth(), ApiProblems(Errors.unauthenticated, Errors.forbidden));
}

/**
 * Marks an operation as callable without an API key. buildOpenApiDocument turns the marker into
 * `security: []`, which @nestjs/swagger cannot emit by itself. Applied by @Public(), not by hand.
 */
export const PUBLIC_OPERATION_EXTENSION = 'x-fleet-pki-public';
export function ApiPublic(): MethodDecorator & ClassDecorator {
  return ApiExtension(PUBLIC_OPERATION_EXTENSION, true);
}

/**
 * Marks an operation whose errors are plain text (`text/plain`, "<CODE>: <detail>") rather than problem+json, as its
 * protocol wants: EST (RFC 7030 §4.2.3). The filter answers so for the paths of PLAIN_TEXT_ERROR_PATHS
 * (common/problem.filter.ts); buildOpenApiDocument documents the operation's problem answers so.
 */
export const PLAIN_TEXT_ERRORS_EXTENSION = 'x-fleet-pki-plain-text-errors';
export function ApiPlainTextErrors(): MethodDecorator {
  return ApiExtension(PLAIN_TEXT_ERRORS_EXTENSION, true);
}

/**
 * A request body whose schema differs by media type (ApiBody gives every ApiConsumes type the same schema):
 * buildOpenApiDocument replaces the body's content with this. Generated clients type the body from it, so each
 * media type must say exactly what it carries (a JSON array is not a CSV string).
 */
export const REQUEST_CONTENT_EXTENSION = 'x-fleet-pki-request-content';
export function ApiRequestContent(content: Record<string, { schema: SchemaObject }>): MethodDecorator {
  return ApiExtension(REQUEST_CONTENT_EXTENSION, content);
}

/** The `:id` path parameter: a UUID (anything else is a 400). */
export function ApiIdParam(of: string): MethodDecorator & ClassDecorator {
  return ApiParam({ name: 'id', description: `Id of the ${of}`, schema: { type: 'string', format: 'uuid' } });
}
