import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsObject, IsOptional, IsString, IsUUID, Length, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { PageQueryDto } from '../common/page-query.dto';
import { pemEncode } from '../pki/der';
import { CERTIFICATE_FILE_FORMATS } from '../pki/certificate-files';
import { REVOCATION_REASONS, RevocationReason } from '../pki/crl';
import { MAX_CSR_PEM_LENGTH } from '../pki/csr';
import { CertificateRecord, CertificateStatus, CertificateSummary, effectiveStatus, IOT_STATUSES } from './certificate';
import { THING_NAME_PATTERN } from '../pki/profiles';
import { MaxMetadata } from './metadata.validator';

export const CERTIFICATE_STATUSES = ['active', 'revoked', 'superseded', 'expired'] as const;

export class IssueCertificateDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  authorityId: string;

  @ApiProperty({ description: 'PKCS #10 request, PEM', maxLength: MAX_CSR_PEM_LENGTH })
  @IsString() @Length(1, MAX_CSR_PEM_LENGTH)
  csr: string;

  @ApiProperty({ example: 'device', description: 'Certificate profile: device or server' })
  @IsString() @Length(1, 64)
  profile: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 36500, description: 'Defaults to the profile’s; bounded by its maximum' })
  @IsOptional() @IsInt() @Min(1) @Max(36500)
  validityDays?: number;

  @ApiPropertyOptional({ example: 'acme-sensor-000123', description: 'AWS IoT thing name; becomes the subject CN for devices' })
  @IsOptional() @IsString() @Matches(THING_NAME_PATTERN, { message: 'thingName must be 1-128 characters of [a-zA-Z0-9:_-]' })
  thingName?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'Up to 20 string labels' })
  @IsOptional() @IsObject() @MaxMetadata()
  metadata?: Record<string, string>;
}

export class RevokeCertificateDto {
  @ApiProperty({ enum: REVOCATION_REASONS, description: 'RFC 5280 reason' })
  @IsIn(REVOCATION_REASONS)
  reason: RevocationReason;
}

/** A device's renewal (POST /v1/certificates/renew): the CSR of its new key. */
const MAX_TPM_STRUCTURE_LENGTH = 8192;

/** TPM evidence for the new key of a TPM-attested certificate (docs/hardware-identity.md, "Renewal"). */
export class RenewalAttestationDto {
  @ApiProperty({ description: 'Base64 TPM2B_PUBLIC of the AK the certificate was enrolled with', maxLength: MAX_TPM_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_TPM_STRUCTURE_LENGTH)
  akPublic: string;

  @ApiProperty({ description: 'Base64 TPM2B_PUBLIC of the new key (fixedTPM, fixedParent, sensitiveDataOrigin, sign)', maxLength: MAX_TPM_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_TPM_STRUCTURE_LENGTH)
  keyPublic: string;

  @ApiProperty({ description: 'Base64 TPMS_ATTEST of TPM2_Certify(new key, AK)', maxLength: MAX_TPM_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_TPM_STRUCTURE_LENGTH)
  certifyInfo: string;

  @ApiProperty({ description: 'Base64 TPMT_SIGNATURE by the AK over certifyInfo', maxLength: MAX_TPM_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_TPM_STRUCTURE_LENGTH)
  certifySignature: string;

  @ApiPropertyOptional({ description: 'The EK certificate (PEM or base64 DER); when sent it must be the one the certificate was enrolled with', maxLength: 16384 })
  @IsOptional() @IsString() @MaxLength(16384)
  ekCertificate?: string;
}

export class RenewDto {
  @ApiProperty({ description: 'PKCS #10 CSR (PEM) of the new key', maxLength: MAX_CSR_PEM_LENGTH })
  @IsString() @MaxLength(MAX_CSR_PEM_LENGTH)
  csr: string;

  @ApiPropertyOptional({
    type: RenewalAttestationDto,
    description: 'Required when the certificate was TPM-attested (hardwareAttestation): the same AK certifies the new key (RENEWAL_ATTESTATION_REQUIRED without it, RENEWAL_ATTESTATION_MISMATCH with another AK or EK)',
  })
  @IsOptional() @IsObject() @ValidateNested() @Type(() => RenewalAttestationDto)
  tpm?: RenewalAttestationDto;
}

export class CertificateQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: CERTIFICATE_STATUSES })
  @IsOptional() @IsIn(CERTIFICATE_STATUSES)
  status?: CertificateStatus;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional() @IsUUID()
  authorityId?: string;

  @ApiPropertyOptional()
  @IsOptional() @IsString() @Matches(THING_NAME_PATTERN, { message: 'thingName must be 1-128 characters of [a-zA-Z0-9:_-]' })
  thingName?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'Only certificates provisioned through this factory claim' })
  @IsOptional() @IsUUID()
  claimId?: string;

  @ApiPropertyOptional({ description: 'Lowercase hex' })
  @IsOptional() @Matches(/^[0-9a-f]{1,64}$/, { message: 'serial must be lowercase hex' })
  serial?: string;

  @ApiPropertyOptional({ description: 'SHA-256 of the DER, lowercase hex' })
  @IsOptional() @Matches(/^[0-9a-f]{64}$/, { message: 'fingerprint must be 64 lowercase hex characters' })
  fingerprint?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Only certificates whose notAfter is before this time' })
  @IsOptional() @IsISO8601({ strict: true })
  expiringBefore?: string;
}

const CERTIFICATE_DOWNLOAD_FORMATS = ['json', ...CERTIFICATE_FILE_FORMATS] as const;

export class CertificateFormatQueryDto {
  @ApiPropertyOptional({
    enum: CERTIFICATE_DOWNLOAD_FORMATS,
    default: 'json',
    description: 'json: the detail; pem: the certificate followed by its chain, as a PEM file; der: the certificate alone, DER; p7b: the certificate and its chain as a certs-only PKCS #7 (DER)',
  })
  @IsOptional() @IsIn(CERTIFICATE_DOWNLOAD_FORMATS)
  format?: (typeof CERTIFICATE_DOWNLOAD_FORMATS)[number];
}

export class CertificateIotDto {
  @ApiProperty({ enum: IOT_STATUSES, description: 'pending: registration scheduled; active: usable in AWS IoT; failed: given up (see lastError); aws-created: AWS IoT created it from the certificate provider’s answer (fleet provisioning), revoked there when revoked here' })
  status: string;
  @ApiProperty({ description: 'AWS IoT certificateId (SHA-256 of the DER)' }) certificateId: string;
  @ApiProperty({ nullable: true, type: String }) thingName: string | null;
  @ApiProperty({ nullable: true, type: String }) lastError: string | null;
  @ApiProperty({ description: 'The IoT target (GET /v1/iot/targets) it is registered in', example: 'default' }) targetId: string;
}

export class CertificateDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) authorityId: string;
  @ApiProperty({ description: 'Lowercase hex' }) serial: string;
  @ApiProperty({ description: 'SHA-256 of the DER, lowercase hex: the AWS IoT certificateId' }) fingerprint: string;
  @ApiProperty({ enum: CERTIFICATE_STATUSES }) status: string;
  @ApiProperty({
    enum: ['issued', 'imported'],
    description: 'issued: by one of our authorities; imported: a pre-provisioned identity from a secure-element manifest, whose authorityId names its secure-element signer and which is on no CRL or OCSP of ours (docs/secure-elements.md)',
  })
  origin: string;
  @ApiProperty() profile: string;
  @ApiProperty({ example: 'CN=acme-sensor-000123' }) subject: string;
  @ApiProperty({ nullable: true, type: String }) thingName: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The factory claim that provisioned it' }) claimId: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The certificate this one renewed' }) replaces: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The certificate that renewed this one (it is then superseded)' }) replacedBy: string | null;
  @ApiProperty({ example: 'EC-P256' }) keyType: string;
  @ApiProperty({ format: 'date-time' }) notBefore: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty({ format: 'date-time' }) issuedAt: string;
  @ApiProperty({ description: 'True when notAfter was cut to the issuing CA’s notAfter' }) validityClamped: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt: string | null;
  @ApiProperty({ enum: REVOCATION_REASONS, nullable: true, type: String }) revocationReason: string | null;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, nullable: true }) metadata: Record<string, string> | null;
  @ApiProperty({ description: 'The certificate, PEM' }) certificatePem: string;
  @ApiProperty({ description: 'The issuing CA’s certificate followed by each parent up to the root, PEM (imported certificates: the chain their manifest gave)' }) chainPem: string;
  @ApiProperty({ type: CertificateIotDto }) iot: CertificateIotDto;
  @ApiProperty({ type: () => HardwareAttestationDto, nullable: true, description: 'What a TPM proved about the key at enrollment (docs/hardware-identity.md); null: nothing' })
  hardwareAttestation: HardwareAttestationDto | null;
}

export class HardwareAttestationDto {
  @ApiProperty({ enum: ['tpm2'] }) type: string;
  @ApiProperty({ description: 'SHA-256 of the EK certificate DER, lowercase hex' }) ekCertificateSha256: string;
  @ApiProperty({ description: 'Issuer of the EK certificate' }) ekIssuer: string;
  @ApiProperty({ format: 'uuid', description: 'The allow-listed TPM manufacturer root the EK chain ended in' }) manufacturerRootId: string;
  @ApiProperty({ description: 'TPM name of the AK (nameAlg || digest), lowercase hex' }) akName: string;
  @ApiProperty({ description: 'TPM name of the certified key, lowercase hex' }) keyName: string;
  @ApiProperty({ format: 'date-time', description: 'When the device answered the credential challenge' }) attestedAt: string;
}

export class CertificateSummaryDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({
    format: 'uuid',
    description: 'The issuing authority; for an imported (pre-provisioned) certificate, the id of its secure-element signer, which is no authority of ours (docs/secure-elements.md)',
  })
  authorityId: string;
  @ApiProperty() serial: string;
  @ApiProperty() fingerprint: string;
  @ApiProperty({ enum: CERTIFICATE_STATUSES }) status: string;
  @ApiProperty({
    enum: ['issued', 'imported'],
    description: 'issued: by one of our authorities; imported: a pre-provisioned identity from a secure-element manifest (on no CRL or OCSP of ours)',
  })
  origin: string;
  @ApiProperty() profile: string;
  @ApiProperty() subject: string;
  @ApiProperty({ nullable: true, type: String }) thingName: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The factory claim that provisioned it' }) claimId: string | null;
  @ApiProperty({ format: 'date-time' }) notBefore: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty({ format: 'date-time' }) issuedAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt: string | null;
  @ApiProperty({ enum: REVOCATION_REASONS, nullable: true, type: String }) revocationReason: string | null;
  @ApiProperty({ type: CertificateIotDto }) iot: CertificateIotDto;
}

export class CertificateListDto {
  @ApiProperty({ type: [CertificateSummaryDto] }) items: CertificateSummaryDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next page' }) nextCursor: string | null;
}

export function toSummaryDto(record: CertificateSummary, now: Date): CertificateSummaryDto {
  return {
    id: record.id,
    authorityId: record.authorityId,
    serial: record.serial,
    fingerprint: record.fingerprint,
    status: effectiveStatus(record, now),
    origin: record.origin ?? 'issued',
    profile: record.profile,
    subject: record.subject,
    thingName: record.thingName,
    claimId: record.claimId,
    notBefore: record.notBefore,
    notAfter: record.notAfter,
    issuedAt: record.issuedAt,
    revokedAt: record.revokedAt,
    revocationReason: record.revocationReason,
    iot: { status: record.iotStatus, certificateId: record.fingerprint, thingName: record.thingName, lastError: record.iotLastError, targetId: record.iotTargetId ?? 'default' },
  };
}

export function toCertificateDto(record: CertificateRecord, chainPem: string, now: Date): CertificateDto {
  return {
    ...toSummaryDto(record, now),
    replaces: record.replacesId,
    replacedBy: record.replacedById,
    keyType: record.keyDescription,
    validityClamped: record.validityClamped,
    metadata: record.metadata,
    certificatePem: pemEncode('CERTIFICATE', record.certificateDer),
    chainPem,
    hardwareAttestation: record.hardwareAttestation,
  };
}
