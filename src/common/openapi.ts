import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiPropertyOptional, ApiResponse } from '@nestjs/swagger';

/** RFC 9457 problem details, as every 4xx/5xx of this API is sent. */
export class ProblemDto {
  @ApiProperty({ example: 'https://fleet-pki.dev/problems/certificate-already-revoked' }) type: string;
  @ApiProperty({ example: 'Conflict' }) title: string;
  @ApiProperty({ example: 409 }) status: number;
  @ApiProperty({ example: 'certificate 6f1c… is already revoked' }) detail: string;
  @ApiProperty({ description: 'Stable machine-readable error code', example: 'CERTIFICATE_ALREADY_REVOKED' }) code: string;
  @ApiPropertyOptional({ example: 'a3c9e0d2-…' }) instance?: string;
  @ApiPropertyOptional({ type: [String], description: 'Validation findings, one per bad field' }) errors?: string[];
}

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (VALIDATION_FAILED, MALFORMED_JSON, INVALID_CSR, …)',
  401: 'Missing or invalid API key (UNAUTHENTICATED)',
  403: 'The key’s role does not allow this (FORBIDDEN)',
  404: 'Not found',
  409: 'Conflict with the current state',
  413: 'Body larger than the limit (PAYLOAD_TOO_LARGE)',
  415: 'Unsupported content type',
  422: 'Well-formed but refused by policy',
  503: 'A dependency (database, key backend) is unavailable',
};

/** Documents the problem+json responses a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: DESCRIPTIONS[status], content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/ProblemDto' } } } }),
    ),
  );
}

/** A route that needs an API key: documents bearer auth and the 401/403 answers. */
export function ApiSecured(): MethodDecorator & ClassDecorator {
  return applyDecorators(ApiBearerAuth(), ApiProblems(401, 403));
}
