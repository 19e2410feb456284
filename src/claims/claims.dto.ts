import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsISO8601, IsObject, IsOptional, IsString, IsUUID, Length, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { CertificateRecord } from '../certificates/certificate';
import { HardwareAttestationDto } from '../certificates/certificates.dto';
import { NO_CONTROL_CHARS } from '../common/text';
import { pemEncode } from '../pki/der';
import { REVOCATION_REASONS, RevocationReason } from '../pki/crl';
import { MAX_CSR_PEM_LENGTH } from '../pki/csr';
import { PKCS12_PASSWORD_MAX_LENGTH, PKCS12_PASSWORD_MIN_LENGTH } from '../pki/pkcs12';
import { ATTESTATION_MODES, AttestationMode, Claim } from './claim';
import { ClaimKeySpec } from './claims.service';
import { IOT_POLICY_NAME_PATTERN } from '../iot/iot-registration';

const CLAIM_KEY_SPECS: ClaimKeySpec[] = ['EC_P256', 'EC_P384', 'RSA_2048'];
/** AWS IoT thing type and group names. */
const THING_TYPE_OR_GROUP = /^[a-zA-Z0-9:_-]{1,128}$/;

export class ClaimIotDto {
  @ApiPropertyOptional({ description: 'AWS IoT policy attached to each device certificate (instead of the CA registration’s)', example: 'fleet-device' })
  @IsOptional() @IsString() @Matches(IOT_POLICY_NAME_PATTERN, { message: 'policyName must be 1-128 characters of letters, digits and +=,.@_-' })
  policyName?: string;

  @ApiPropertyOptional({ example: 'fleet-default', description: 'A managed policy template (POST /v1/iot/policies) instead of policyName' })
  @IsOptional() @IsString() @Matches(IOT_POLICY_NAME_PATTERN, { message: 'policyTemplate must be a policy template name' })
  policyTemplate?: string;

  @ApiPropertyOptional({ description: 'Thing type the things are created with (must exist in AWS IoT)' })
  @IsOptional() @IsString() @Matches(THING_TYPE_OR_GROUP, { message: 'thingTypeName must be 1-128 characters of [a-zA-Z0-9:_-]' })
  thingTypeName?: string;

  @ApiPropertyOptional({ description: 'Thing group each thing is added to (must exist in AWS IoT)' })
  @IsOptional() @IsString() @Matches(THING_TYPE_OR_GROUP, { message: 'thingGroupName must be 1-128 characters of [a-zA-Z0-9:_-]' })
  thingGroupName?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'Thing attributes (at most 50; names [a-zA-Z0-9_.,@/:#=[]-] up to 128, values up to 800 characters)' })
  @IsOptional() @IsObject()
  attributes?: Record<string, string>;
}

export class ClaimCertificateRequestDto {
  @ApiPropertyOptional({ description: 'PKCS #10 CSR (PEM) of a key the factory made; the claim certificate certifies it', maxLength: MAX_CSR_PEM_LENGTH })
  @IsOptional() @IsString() @MaxLength(MAX_CSR_PEM_LENGTH)
  csr?: string;

  @ApiPropertyOptional({ description: 'true: the service makes the key and returns it once (privateKeyPem); it is never stored' })
  @IsOptional() @IsBoolean()
  generateKey?: boolean;

  @ApiPropertyOptional({ enum: CLAIM_KEY_SPECS, default: 'EC_P256', description: 'Key type when generateKey is true' })
  @IsOptional() @IsIn(CLAIM_KEY_SPECS)
  keySpec?: ClaimKeySpec;
}

export class CreateClaimDto {
  @ApiProperty({ example: 'Line 3, batch 2026-12', maxLength: 200 })
  @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'name must not contain control characters' })
  name: string;

  @ApiProperty({ example: 'Acme Shenzhen', maxLength: 200 })
  @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'factory must not contain control characters' })
  factory: string;

  @ApiPropertyOptional({ example: 'line-3', maxLength: 200 })
  @IsOptional() @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'line must not contain control characters' })
  line?: string;

  @ApiProperty({ format: 'uuid', description: 'Authority with usage "claims" that issues the claim certificate' })
  @IsUUID()
  claimAuthorityId: string;

  @ApiProperty({ format: 'uuid', description: 'Authority with usage "devices" that issues the device certificates' })
  @IsUUID()
  deviceAuthorityId: string;

  @ApiPropertyOptional({ default: 'device', description: 'Device profile of the issued certificates' })
  @IsOptional() @IsString() @Length(1, 32)
  profile?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 3650, description: 'Device certificate validity; default the profile’s' })
  @IsOptional() @IsInt() @Min(1) @Max(3650)
  validityDays?: number;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 10_000_000, description: 'Devices the claim may provision (enforced atomically)' })
  @IsInt() @Min(1) @Max(10_000_000)
  maxDevices: number;

  @ApiPropertyOptional({ format: 'date-time', description: 'Exchanges open; default now' })
  @IsOptional() @IsISO8601({ strict: true })
  notBefore?: string;

  @ApiProperty({ format: 'date-time', description: 'Exchanges close; the claim certificate expires then too' })
  @IsISO8601({ strict: true })
  notAfter: string;

  @ApiPropertyOptional({ example: 'SN[0-9]{8}', maxLength: 256, description: 'Regular expression in RE2 syntax the whole serial must match (anchored at both ends; matched in time linear in the serial; no backreferences or lookaround; at most 500 RE2 program instructions, so repeat counts stay small)' })
  @IsOptional() @IsString() @Length(1, 256)
  serialPattern?: string;

  @ApiProperty({ example: 'acme-{serial}', maxLength: 128, description: 'Thing name (and certificate CN) of each device; must contain {serial}; the result must be an AWS IoT thing name of at most 64 characters' })
  @IsString() @Length(1, 128)
  thingNameTemplate: string;

  @ApiPropertyOptional({ type: ClaimIotDto })
  @IsOptional() @IsObject() @ValidateNested() @Type(() => ClaimIotDto)
  iot?: ClaimIotDto;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "Which IoT target(s) the devices go to (docs/iot-targets.md): {mode:'fixed',targetId} | {mode:'attribute',attribute,map:{value:targetId},default?} (a device attribute sent with the exchange, else the claim's iot.attributes) | {mode:'weighted',weights:{targetId:n}} (by a hash of the serial). Absent: the default target.", example: { mode: 'attribute', attribute: 'region', map: { eu: 'eu-prod', us: 'us-prod' } } })
  @IsOptional() @IsObject()
  allocation?: Record<string, unknown>;

  @ApiPropertyOptional({ default: false, description: 'A serial seen before with another key gets a new certificate (the old one is revoked as superseded) instead of a 409' })
  @IsOptional() @IsBoolean()
  allowReprovisioning?: boolean;

  @ApiPropertyOptional({ enum: ATTESTATION_MODES, default: 'off', description: 'TPM attestation of device keys (docs/hardware-identity.md): tpm = required (a plain exchange is refused with ATTESTATION_REQUIRED), optional = either path, off = only the plain exchange' })
  @IsOptional() @IsIn(ATTESTATION_MODES)
  attestation?: AttestationMode;

  @ApiProperty({ type: ClaimCertificateRequestDto, description: 'Exactly one of csr or generateKey' })
  @IsObject() @ValidateNested() @Type(() => ClaimCertificateRequestDto)
  claimCertificate: ClaimCertificateRequestDto;

  @ApiPropertyOptional({
    minLength: PKCS12_PASSWORD_MIN_LENGTH,
    maxLength: PKCS12_PASSWORD_MAX_LENGTH,
    format: 'password',
    description: 'With ?format=p12 (and only then; required then): the password of the PKCS #12 file answered. Never stored nor logged.',
  })
  @IsOptional() @IsString() @Length(PKCS12_PASSWORD_MIN_LENGTH, PKCS12_PASSWORD_MAX_LENGTH)
  @Matches(NO_CONTROL_CHARS, { message: 'pkcs12Password must not contain control characters' })
  pkcs12Password?: string;
}

const CREATE_CLAIM_FORMATS = ['json', 'p12'] as const;

export class CreateClaimQueryDto {
  @ApiPropertyOptional({
    enum: CREATE_CLAIM_FORMATS,
    default: 'json',
    description: 'p12: answer with the generated key, the claim certificate and its chain as a PKCS #12 file (needs claimCertificate.generateKey and pkcs12Password)',
  })
  @IsOptional() @IsIn(CREATE_CLAIM_FORMATS)
  format?: (typeof CREATE_CLAIM_FORMATS)[number];
}

export class ClaimDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty() factory: string;
  @ApiProperty({ nullable: true, type: String }) line: string | null;
  @ApiProperty({ enum: ['active', 'revoked'], description: 'active (exchanges allowed inside the window) or revoked' }) status: string;
  @ApiProperty({ format: 'uuid' }) claimAuthorityId: string;
  @ApiProperty({ format: 'uuid' }) deviceAuthorityId: string;
  @ApiProperty() profile: string;
  @ApiProperty({ type: 'integer', nullable: true }) validityDays: number | null;
  @ApiProperty({ type: 'integer' }) maxDevices: number;
  @ApiProperty({ type: 'integer', description: 'Devices provisioned' }) used: number;
  @ApiProperty({ type: 'integer', description: 'maxDevices − used' }) remaining: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'Serials on the allow-list; null when there is none (any serial the pattern accepts)' }) allowlistSize: number | null;
  @ApiProperty({ format: 'date-time' }) notBefore: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty({ nullable: true, type: String }) serialPattern: string | null;
  @ApiProperty() thingNameTemplate: string;
  @ApiProperty({ type: ClaimIotDto, nullable: true }) iot: ClaimIotDto | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, description: 'See CreateClaimDto.allocation; null: the default target' }) allocation: Record<string, unknown> | null;
  @ApiProperty() allowReprovisioning: boolean;
  @ApiProperty({ enum: ATTESTATION_MODES, description: 'off | optional | tpm (required): TPM attestation of device keys' }) attestation: string;
  @ApiProperty({ format: 'uuid', description: 'The claim certificate (GET /v1/certificates/{id})' }) claimCertificateId: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastExchangeAt: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt: string | null;
}

export class ClaimCertificateDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() serial: string;
  @ApiProperty({ description: 'SHA-256 of the DER, lowercase hex' }) fingerprint: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty() certificatePem: string;
  @ApiProperty({ description: 'The claim CA’s certificate followed by each parent up to the root, PEM' }) chainPem: string;
  @ApiProperty({ nullable: true, type: String, description: 'PKCS #8 PEM when the service generated the key: shown this once, never stored' }) privateKeyPem: string | null;
}

export class CreatedClaimDto extends ClaimDto {
  @ApiProperty({ type: ClaimCertificateDto }) claimCertificate: ClaimCertificateDto;
}

export class ClaimListDto {
  @ApiProperty({ type: [ClaimDto] }) items: ClaimDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next page' }) nextCursor: string | null;
}

export class RevokeClaimDto {
  @ApiProperty({ enum: REVOCATION_REASONS, description: 'RFC 5280 reason, for the claim certificate and (with cascade) every device certificate' })
  @IsIn(REVOCATION_REASONS)
  reason: RevocationReason;

  @ApiPropertyOptional({ default: false, description: 'Also revoke every device certificate the claim provisioned' })
  @IsOptional() @IsBoolean()
  cascade?: boolean;
}

export class RevokedClaimDto extends ClaimDto {
  @ApiProperty({ type: 'integer', description: 'Device certificates revoked by the cascade' }) revokedDeviceCertificates: number;
}


export class ExchangeDto {
  @ApiProperty({ example: 'SN00012345', description: '1-64 letters, digits or . _ : / -, starting with a letter or digit' })
  @IsString() @Length(1, 64)
  deviceSerial: string;

  @ApiProperty({ description: 'PKCS #10 CSR (PEM) of the device’s own key; its CN, if any, must be the serial or the thing name', maxLength: MAX_CSR_PEM_LENGTH })
  @IsString() @MaxLength(MAX_CSR_PEM_LENGTH)
  csr: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'Thing attributes for this device, added to the claim’s' })
  @IsOptional() @IsObject()
  attributes?: Record<string, string>;
}

export class ExchangeIotDto {
  @ApiProperty({ enum: ['none', 'pending', 'registered', 'active', 'inactive', 'revoked', 'failed'], description: 'pending: AWS IoT registration scheduled (API mode); none: the device registers itself on first connect (JITR/JITP) or the CA is not registered' })
  status: string;
  @ApiProperty({ description: 'The IoT target (GET /v1/iot/targets) the device is registered in', example: 'default' }) targetId: string;
  @ApiProperty({ nullable: true, type: String, description: 'Its AWS account (null for the default target when AWS_ACCOUNT_ID is unset)' }) accountId: string | null;
  @ApiProperty({ description: 'Its AWS region (empty when AWS IoT is not configured)' }) region: string;
}

export class ExchangeResultDto {
  @ApiProperty({ format: 'uuid', description: 'Our id of the device certificate' }) id: string;
  @ApiProperty({ description: 'SHA-256 of the DER, lowercase hex: the AWS IoT certificateId' }) certificateId: string;
  @ApiProperty() deviceSerial: string;
  @ApiProperty() thingName: string;
  @ApiProperty({ description: 'Certificate serial number, lowercase hex' }) serial: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty() certificatePem: string;
  @ApiProperty({ description: 'The device CA’s certificate followed by each parent up to the root, PEM' }) chainPem: string;
  @ApiProperty({ format: 'uuid' }) claimId: string;
  @ApiProperty({ type: ExchangeIotDto }) iot: ExchangeIotDto;
  @ApiProperty({ type: HardwareAttestationDto, nullable: true, description: 'What the TPM proved (attested enrollment); null for a plain exchange' })
  hardwareAttestation: HardwareAttestationDto | null;
}

export function toClaimDto(claim: Claim): ClaimDto {
  // The allow-list's version id is internal (it changes with every upload): the size says what callers need.
  const { allowlistId: _internal, ...shown } = claim;
  return { ...shown, iot: claim.iot, remaining: Math.max(0, claim.maxDevices - claim.used) };
}

export function toClaimCertificateDto(record: CertificateRecord, chainPem: string, privateKeyPem: string | null): ClaimCertificateDto {
  return { id: record.id, serial: record.serial, fingerprint: record.fingerprint, notAfter: record.notAfter, certificatePem: pemEncode('CERTIFICATE', record.certificateDer), chainPem, privateKeyPem };
}

export function toExchangeResultDto(record: CertificateRecord, chainPem: string, deviceSerial: string, target: { id: string; accountId: string | null; region: string }): ExchangeResultDto {
  return {
    id: record.id,
    certificateId: record.fingerprint,
    deviceSerial,
    thingName: record.thingName ?? '',
    serial: record.serial,
    notAfter: record.notAfter,
    certificatePem: pemEncode('CERTIFICATE', record.certificateDer),
    chainPem,
    claimId: record.claimId ?? '',
    iot: { status: record.iotStatus, targetId: target.id, accountId: target.accountId, region: target.region },
    hardwareAttestation: record.hardwareAttestation,
  };
}
