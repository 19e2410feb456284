import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export const CHECK_STATUSES = ['ok', 'warn', 'fail', 'skipped'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export class ChainCertificateDto {
  @ApiProperty({ example: 'CN=pki.example.com' }) subject: string;
  @ApiProperty({ example: 'C=US, O=Let’s Encrypt, CN=R11' }) issuer: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty({ description: 'SHA-256 fingerprint, colon-separated hex (as AWS lists its CAs)' }) sha256: string;
}

export class SetupCheckDto {
  @ApiProperty({ example: 'public-base-url-tls' }) name: string;
  @ApiProperty({ enum: CHECK_STATUSES, description: 'skipped: not applicable to this configuration (no call was made)' }) status: CheckStatus;
  @ApiProperty({ description: 'What was found and, when it is not ok, what follows and what to do' }) detail: string;
  @ApiPropertyOptional({
    description: 'public-base-url-tls only, when not trusted: not-https, unreachable, timeout, self-signed, untrusted-issuer, expired, not-yet-valid, hostname-mismatch, tls-error',
  })
  reason?: string;
  @ApiPropertyOptional({ type: [ChainCertificateDto], description: 'public-base-url-tls only: the chain the server presented, leaf first' })
  chain?: ChainCertificateDto[];
}

export class SetupReportDto {
  @ApiProperty({ enum: ['ok', 'warn', 'fail'], description: 'fail if any check failed, else warn if any warned' }) status: 'ok' | 'warn' | 'fail';
  @ApiProperty({ format: 'date-time' }) checkedAt: string;
  @ApiProperty({ type: [SetupCheckDto] }) checks: SetupCheckDto[];
}
