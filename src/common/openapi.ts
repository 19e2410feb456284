import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiParam, ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';

/** RFC 9457 problem details, as every 4xx/5xx of this API is sent. */
export class ProblemDto {
  @ApiProperty({ description: 'URN naming the problem kind', example: 'urn:fleet-pki:problem:certificate-already-revoked' }) type: string;
  @ApiProperty({ description: 'HTTP reason phrase of the status', example: 'Conflict' }) title: string;
  @ApiProperty({ type: 'integer', example: 409 }) status: number;
  @ApiProperty({ description: 'What went wrong, for humans', example: 'certificate 6f1c… is already revoked' }) detail: string;
  @ApiProperty({ description: 'Stable machine-readable error code', example: 'CERTIFICATE_ALREADY_REVOKED' }) code: string;
  @ApiPropertyOptional({ description: 'The request id (also in the X-Request-Id response header)', example: 'a3c9e0d2-…' }) instance?: string;
  @ApiPropertyOptional({ type: [String], description: 'Validation findings, one per bad field' }) errors?: string[];
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (VALIDATION_FAILED, MALFORMED_JSON, BODY_TOO_DEEP, BODY_TOO_WIDE, INVALID_URL, MALFORMED_REQUEST, INVALID_CURSOR, INVALID_CSR, INVALID_ALLOWLIST, …)',
  401: 'Missing or invalid API key (UNAUTHENTICATED); on the exchange: TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_REPLAYED, TOKEN_AUDIENCE_MISMATCH, TOKEN_SIGNATURE_INVALID, CLAIM_CERTIFICATE_UNTRUSTED, NOT_A_CLAIM_CERTIFICATE, CLAIM_CERTIFICATE_EXPIRED; on renewal also CERTIFICATE_UNTRUSTED, NOT_A_DEVICE_CERTIFICATE',
  403: 'The key’s role does not allow this (FORBIDDEN); on the exchange: CLAIM_REVOKED, CLAIM_NOT_YET_VALID, CLAIM_EXPIRED, SERIAL_NOT_ALLOWED; on renewal: RENEWAL_NOT_YET_ALLOWED, CERTIFICATE_REVOKED, CERTIFICATE_EXPIRED, RENEWAL_NOT_ALLOWED',
  404: 'Not found (AUTHORITY_NOT_FOUND, CERTIFICATE_NOT_FOUND, CLAIM_NOT_FOUND, CAMPAIGN_NOT_FOUND, API_KEY_NOT_FOUND)',
  409: 'Conflict with the current state (AUTHORITY_NOT_ACTIVE, AUTHORITY_EXPIRED, AUTHORITY_KEY_UNUSABLE, AUTHORITY_KEY_IN_USE, CERTIFICATE_ALREADY_REVOKED, CLAIM_ALREADY_REVOKED, CLAIM_QUOTA_EXHAUSTED, DEVICE_ALREADY_PROVISIONED, CERTIFICATE_SUPERSEDED, CAMPAIGN_NOT_OPEN)',
  413: 'Body larger than the limit (PAYLOAD_TOO_LARGE)',
  415: 'The body is not application/json (UNSUPPORTED_MEDIA_TYPE)',
  422: 'Well-formed but refused by policy (UNSUPPORTED_KEY, SAN_NOT_ALLOWED, VALIDITY_EXCEEDS_PROFILE, AUTHORITY_USAGE_MISMATCH, INVALID_CLAIM, IDEMPOTENCY_KEY_REUSED, SAME_KEY_NOT_ALLOWED, CAMPAIGN_EMPTY, KEY_BACKEND_NOT_CONFIGURED, KMS_KEY_NOT_SUITABLE, KEY_SPEC_MISMATCH, …)',
  502: 'AWS refused a request the service made (IOT_REQUEST_REFUSED, with AWS’s reason)',
  503: 'A dependency is unavailable: KEY_BACKEND_UNAVAILABLE, KEY_BACKEND_THROTTLED (with Retry-After), IOT_UNAVAILABLE, IOT_THROTTLED, NOT_READY',
};

/** Security scheme of the x5c JWTs signed with a certificate's key: stations (claim certificate) and devices (their own). */
export const CERTIFICATE_JWT_SCHEME = 'certificateJwt';

/** Documents the problem+json responses a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) => {
      const description = DESCRIPTIONS[status];
      if (!description) throw new Error(`ApiProblems: no description for HTTP ${status}; add one to DESCRIPTIONS`);
      return ApiResponse({ status, description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDto' } } } });
    }),
  );
}

/** A route that needs an API key: documents bearer auth and the 401/403 answers. */
export function ApiSecured(): MethodDecorator & ClassDecorator {
  return applyDecorators(ApiBearerAuth(), ApiProblems(401, 403));
}

/**
 * Marks an operation as callable without an API key. buildOpenApiDocument turns the marker into
 * `security: []`, which @nestjs/swagger cannot emit by itself. Applied by @Public(), not by hand.
 */
export const PUBLIC_OPERATION_EXTENSION = 'x-fleet-pki-public';
export function ApiPublic(): MethodDecorator & ClassDecorator {
  return ApiExtension(PUBLIC_OPERATION_EXTENSION, true);
}

/** The `:id` path parameter: a UUID (anything else is a 400). */
export function ApiIdParam(of: string): MethodDecorator & ClassDecorator {
  return ApiParam({ name: 'id', description: `Id of the ${of}`, schema: { type: 'string', format: 'uuid' } });
}
