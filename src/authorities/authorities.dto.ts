import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsObject, IsOptional, IsString, IsUUID, Length, Matches, Max, Min, ValidateNested } from 'class-validator';
import { NO_CONTROL_CHARS } from '../common/text';
import { CERTIFICATE_FILE_FORMATS, CertificateFileFormat } from '../pki/certificate-files';
import { KEY_BACKENDS, KEY_SPECS, KeyBackend, KeySpec } from '../keys/key-spec';
import { pemEncode } from '../pki/der';
import { MAX_UPLOADED_CERTIFICATE_PEM_LENGTH, MAX_UPLOADED_CHAIN_CERTIFICATES, MAX_UPLOADED_CHAIN_PEM_LENGTH } from '../pki/external-chain';
import { Authority, AUTHORITY_STATUSES, hasCertificate, AUTHORITY_USAGES, AuthorityType, AuthorityUsage } from './authority';


export class SubjectDto {
  @ApiProperty({ example: 'Acme Device Root CA', maxLength: 64 })
  @IsString() @Length(1, 64) @Matches(NO_CONTROL_CHARS, { message: 'commonName must not contain control characters' })
  commonName: string;

  @ApiPropertyOptional({ example: 'Acme Corp', maxLength: 64 })
  @IsOptional() @IsString() @Length(1, 64) @Matches(NO_CONTROL_CHARS, { message: 'organization must not contain control characters' })
  organization?: string;

  @ApiPropertyOptional({ example: 'IoT', maxLength: 64 })
  @IsOptional() @IsString() @Length(1, 64) @Matches(NO_CONTROL_CHARS, { message: 'organizationalUnit must not contain control characters' })
  organizationalUnit?: string;

  @ApiPropertyOptional({ example: 'US', description: 'ISO 3166 two-letter code' })
  @IsOptional() @IsString() @Matches(/^[A-Z]{2}$/, { message: 'country must be two upper-case letters' })
  country?: string;

  @ApiPropertyOptional({ example: 'California', maxLength: 128 })
  @IsOptional() @IsString() @Length(1, 128) @Matches(NO_CONTROL_CHARS, { message: 'state must not contain control characters' })
  state?: string;

  @ApiPropertyOptional({ example: 'San Jose', maxLength: 128 })
  @IsOptional() @IsString() @Length(1, 128) @Matches(NO_CONTROL_CHARS, { message: 'locality must not contain control characters' })
  locality?: string;
}

export class CreateAuthorityDto {
  @ApiProperty({ example: 'Acme Root', maxLength: 200 })
  @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'name must not contain control characters' })
  name: string;

  @ApiProperty({ enum: ['root', 'intermediate'] })
  @IsIn(['root', 'intermediate'])
  type: AuthorityType;

  @ApiPropertyOptional({ format: 'uuid', description: 'The issuing authority (intermediates only)' })
  @IsOptional() @IsUUID()
  parentId?: string;

  @ApiPropertyOptional({
    enum: ['external'],
    description:
      'external: an intermediate whose certificate an external (offline) root signs. It is created pending with a CSR ' +
      '(`csrPem`); upload the signed certificate with POST /v1/authorities/{id}/certificate. Excludes parentId.',
  })
  @IsOptional() @IsIn(['external'])
  parent?: 'external';

  @ApiPropertyOptional({ enum: KEY_BACKENDS, default: 'local', description: 'pkcs11: an HSM token through its PKCS #11 module (PKCS11_MODULE; docs/pkcs11.md)' })
  @IsOptional() @IsIn(KEY_BACKENDS)
  keyBackend?: KeyBackend;

  @ApiPropertyOptional({ enum: KEY_SPECS, description: 'Default EC_P256. With kmsKeyId, optional: when given it must match the adopted key.' })
  @IsOptional() @IsIn(KEY_SPECS)
  keySpec?: KeySpec;

  @ApiPropertyOptional({ description: 'Adopt an existing AWS KMS key by id, ARN or alias (aws-kms only)', maxLength: 2048 })
  @IsOptional() @IsString() @Length(1, 2048)
  kmsKeyId?: string;

  @ApiPropertyOptional({ description: 'Adopt an existing private key on the PKCS #11 token by its CKA_ID, hex (pkcs11 only; docs/pkcs11.md)', maxLength: 256 })
  @IsOptional() @IsString() @Matches(/^([0-9a-fA-F]{2}){1,128}$/, { message: 'pkcs11KeyId must be the CKA_ID in hex (1 to 128 bytes)' })
  pkcs11KeyId?: string;

  @ApiPropertyOptional({ description: 'Adopt an existing private key on the PKCS #11 token by its CKA_LABEL (pkcs11 only)', maxLength: 128 })
  @IsOptional() @IsString() @Length(1, 128) @Matches(NO_CONTROL_CHARS, { message: 'pkcs11KeyLabel must not contain control characters' })
  pkcs11KeyLabel?: string;

  @ApiProperty({ type: SubjectDto })
  @IsObject() @ValidateNested() @Type(() => SubjectDto)
  subject: SubjectDto;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 36500, description: 'Default 3650 for roots, 1825 for intermediates; clamped to the parent' })
  @IsOptional() @IsInt() @Min(1) @Max(36500)
  validityDays?: number;

  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: 10, description: 'basicConstraints pathLenConstraint' })
  @IsOptional() @IsInt() @Min(0) @Max(10)
  pathLength?: number;

  @ApiPropertyOptional({ enum: AUTHORITY_USAGES, default: 'devices', description: 'claims: issues only factory claim certificates (see /v1/claims); devices: everything else' })
  @IsOptional() @IsIn(AUTHORITY_USAGES)
  usage?: AuthorityUsage;

  @ApiPropertyOptional({
    description: 'Whether this CA signs end-entity (device, server, claim) certificates itself. Default false for a root (its key should sign only CAs: issue under an intermediate), true for an intermediate.',
  })
  @IsOptional() @IsBoolean()
  allowLeafIssuance?: boolean;

  @ApiPropertyOptional({
    description:
      'Roots only: an offline root (docs/key-ceremony.md). Its key signs its own certificate now and afterwards nothing — no intermediate, ' +
      'CRL or OCSP signer certificate — except inside a signing window an admin opens (POST /v1/authorities/{id}/signing-window); outside ' +
      'one such requests get 409 AUTHORITY_OFFLINE and its last CRL keeps being served. Default false.',
  })
  @IsOptional() @IsBoolean()
  offline?: boolean;
}

export class SigningWindowDto {
  @ApiProperty({ type: 'integer', minimum: 1, maximum: 1440, description: 'How long the root may sign, from now' })
  @IsInt() @Min(1) @Max(1440)
  minutes: number;

  @ApiProperty({ description: 'Why (recorded in the audit event), e.g. the ceremony or change ticket', maxLength: 500 })
  @IsString() @Length(1, 500) @Matches(NO_CONTROL_CHARS, { message: 'reason must not contain control characters' })
  reason: string;
}

export class AuthorityDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ['root', 'intermediate'] }) type: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) parentId: string | null;
  @ApiProperty({ enum: AUTHORITY_USAGES }) usage: string;
  @ApiProperty({
    enum: AUTHORITY_STATUSES,
    description:
      'pending: created under an external root and waiting for its certificate (POST /v1/authorities/{id}/certificate); issues nothing, ' +
      'and its serial, fingerprint, validity, certificatePem and chainPem are null until then (and stay null if it is disabled while pending). ' +
      'retiring: rotated to successorId; issues nothing new, still publishes CRLs and answers OCSP',
  })
  status: string;
  @ApiProperty({ enum: KEY_BACKENDS }) keyBackend: string;
  @ApiProperty({ enum: KEY_SPECS }) keySpec: string;
  @ApiProperty({ nullable: true, type: String, description: 'ARN of the AWS KMS key (aws-kms authorities; null for local)' })
  kmsKeyArn: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    example: 'pkcs11:token=fleet-ca;id=8f0c2a…',
    description: 'pkcs11 authorities: the token label and the key’s CKA_ID (RFC 7512 URI attributes; pkcs11-tool --id selects it); null otherwise',
  })
  pkcs11KeyUri: string | null;
  @ApiProperty({ example: 'C=US, O=Acme, CN=Acme Root' }) subject: string;
  @ApiProperty({ description: 'Lowercase hex; null while pending', nullable: true, type: String }) serial: string | null;
  @ApiProperty({ description: 'SHA-256 of the certificate DER, lowercase hex (the AWS IoT CA certificate id); null while pending', nullable: true, type: String })
  fingerprint: string | null;
  @ApiProperty({ nullable: true, type: 'integer' }) pathLength: number | null;
  @ApiProperty({ description: 'Whether it signs end-entity certificates itself (false: only CA certificates; issuing from it is refused with AUTHORITY_IS_ROOT or LEAF_ISSUANCE_NOT_ALLOWED)' }) allowLeafIssuance: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'null while pending' }) notBefore: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'null while pending' }) notAfter: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) disabledAt: string | null;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The authority that replaced this one (POST /v1/authorities/{id}/rotate)' }) successorId: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) retiringAt: string | null;
  @ApiProperty({ description: 'The CA certificate, PEM; null while pending', nullable: true, type: String }) certificatePem: string | null;
  @ApiProperty({
    description: 'This CA certificate followed by each parent up to the root, PEM (under an external root: the uploaded chain, up to and including that root); null while pending',
    nullable: true,
    type: String,
  })
  chainPem: string | null;
  @ApiProperty({ description: 'An offline root: its key signs only inside signing windows (docs/key-ceremony.md)' }) offline: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'Offline roots: end of the open signing window; null when closed' })
  signingEnabledUntil: string | null;
  @ApiProperty({ description: 'Whether its certificate comes from an external (offline) root (created with parent "external")' }) externalRoot: boolean;
  @ApiProperty({
    description: 'Under an external root: the PKCS#10 request (PEM) for that root to sign, signed by the authority’s key in its backend; null otherwise',
    nullable: true,
    type: String,
  })
  csrPem: string | null;
  @ApiPropertyOptional({ description: 'Present on creation: true when notAfter was cut to the parent’s notAfter' }) validityClamped?: boolean;
}

export class AuthorityCertificateQueryDto {
  @ApiPropertyOptional({
    enum: CERTIFICATE_FILE_FORMATS,
    default: 'der',
    description: 'der: the CA certificate alone; pem: the CA certificate then each parent up to the root; p7b: the same chain as a certs-only PKCS #7 (DER)',
  })
  @IsOptional() @IsIn(CERTIFICATE_FILE_FORMATS)
  format?: CertificateFileFormat;
}

export class UploadAuthorityCertificateDto {
  @ApiProperty({ description: 'The CA certificate the external root (or one of its intermediates) signed for this authority’s CSR, PEM', maxLength: MAX_UPLOADED_CERTIFICATE_PEM_LENGTH })
  @IsString() @Length(1, MAX_UPLOADED_CERTIFICATE_PEM_LENGTH)
  certificatePem: string;

  @ApiProperty({
    description: `Its issuers up to and including the self-signed external root, PEM, in any order (at most ${MAX_UPLOADED_CHAIN_CERTIFICATES} certificates)`,
    maxLength: MAX_UPLOADED_CHAIN_PEM_LENGTH,
  })
  @IsString() @Length(1, MAX_UPLOADED_CHAIN_PEM_LENGTH)
  chainPem: string;
}

export class AuthorityListDto {
  @ApiProperty({ type: [AuthorityDto] }) items: AuthorityDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next page' }) nextCursor: string | null;
}

export function toAuthorityDto(authority: Authority, certificatePem: string | null, chainPem: string | null): AuthorityDto {
  const { keyRef, certificateDer: _der, publicKeySha256: _pk, revocationCount: _rc, csrDer, externalChain: _chain, ...rest } = authority;
  const pending = !hasCertificate(authority);
  return {
    ...rest,
    // The local key reference is an internal row id; a KMS key ARN is what operators scope IAM policies with.
    kmsKeyArn: authority.keyBackend === 'aws-kms' ? keyRef : null,
    pkcs11KeyUri: authority.keyBackend === 'pkcs11' ? keyRef : null,
    ...(pending ? { serial: null, fingerprint: null, notBefore: null, notAfter: null } : {}),
    certificatePem: pending ? null : certificatePem,
    chainPem: pending ? null : chainPem,
    externalRoot: csrDer !== null,
    csrPem: csrDer ? pemEncode('CERTIFICATE REQUEST', csrDer) : null,
  };
}
