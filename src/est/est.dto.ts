import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsObject, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { EST_KEY_SPECS, EST_LABEL_ATTESTATION, EST_LABEL_PATTERN, EstKeySpec, EstLabel, EstLabelAttestation, labelTarget } from './est-label';

const KINDS = ['claim', 'authority'] as const;

export class CreateEstLabelDto {
  @ApiProperty({ pattern: EST_LABEL_PATTERN.source, example: 'line-3', description: 'The path segment: /.well-known/est/<label>/…; `default` serves /.well-known/est/… without a label. Not an operation name (cacerts, simpleenroll, simplereenroll, csrattrs, serverkeygen, fullcmc)' })
  @IsString() @Matches(EST_LABEL_PATTERN, { message: 'label must be 1-64 characters of a-z, 0-9 and -' })
  label: string;

  @ApiProperty({ enum: KINDS, description: '`claim`: enrollment is the factory exchange of `claimId` (TLS client certificate = the claim certificate); `authority`: issuance under `authorityId` and `profile`, by an operator API key' })
  @IsIn(KINDS)
  kind: (typeof KINDS)[number];

  @ApiPropertyOptional({ format: 'uuid', description: 'kind claim: the factory claim' })
  @IsOptional() @IsUUID()
  claimId?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'kind authority: the issuing authority (usage devices)' })
  @IsOptional() @IsUUID()
  authorityId?: string;

  @ApiPropertyOptional({ example: 'device', description: 'kind authority: the certificate profile (device or server)' })
  @IsOptional() @IsString() @Matches(/^[a-z0-9-]{1,32}$/, { message: 'profile must be a profile name' })
  profile?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 3650, description: 'kind authority: validity of the certificates, within the profile’s maximum (default: the profile’s)' })
  @IsOptional() @IsInt() @Min(1) @Max(3650)
  validityDays?: number;

  @ApiPropertyOptional({ enum: EST_KEY_SPECS, default: 'EC_P256', description: 'The key type csrattrs asks for and serverkeygen makes' })
  @IsOptional() @IsIn(EST_KEY_SPECS)
  keySpec?: EstKeySpec;

  @ApiPropertyOptional({ default: false, description: 'Whether /serverkeygen is allowed under this label (the service makes the device key; it is never stored)' })
  @IsOptional() @IsBoolean()
  serverKeygen?: boolean;

  @ApiPropertyOptional({ enum: EST_LABEL_ATTESTATION, default: 'off', description: 'tpm: devices under this label must enroll with TPM attestation (POST /v1/provisioning/attestations, docs/hardware-identity.md); EST cannot carry it, so EST enrollment here answers ATTESTATION_REQUIRED. off: the label adds nothing (a claim label follows its claim’s attestation)' })
  @IsOptional() @IsIn(EST_LABEL_ATTESTATION)
  attestation?: EstLabelAttestation;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "Which IoT target(s) devices enrolled through this label go to (docs/iot-targets.md), the same shape as a claim's allocation: {mode:'fixed',targetId} | {mode:'attribute',attribute,map,default?} | {mode:'weighted',weights}. It takes precedence over the claim's (claim label) or the profile's IOT_PROFILE_ALLOCATION (authority label). Absent: theirs.", example: { mode: 'fixed', targetId: 'eu-prod' } })
  @IsOptional() @IsObject()
  allocation?: Record<string, unknown>;
}

export class EstLabelDto {
  @ApiProperty({ example: 'line-3' }) label: string;
  @ApiProperty({ enum: KINDS }) kind: (typeof KINDS)[number];
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'kind claim: the factory claim' }) claimId: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'kind authority: the issuing authority' }) authorityId: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'kind authority: the profile' }) profile: string | null;
  @ApiProperty({ type: 'integer', nullable: true, description: 'kind authority: the validity in days (null: the profile’s default)' }) validityDays: number | null;
  @ApiProperty({ enum: EST_KEY_SPECS }) keySpec: EstKeySpec;
  @ApiProperty() serverKeygen: boolean;
  @ApiProperty({ enum: EST_LABEL_ATTESTATION }) attestation: string;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, description: "See CreateEstLabelDto.allocation; null: the claim's or the profile's" }) allocation: Record<string, unknown> | null;
  @ApiProperty({ description: 'True for the label named `default`, which /.well-known/est/<operation> uses' }) default: boolean;
  @ApiProperty({ example: '/.well-known/est/line-3', description: 'The EST base path of this label' }) path: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

export class EstLabelListDto {
  @ApiProperty({ type: [EstLabelDto] }) items: EstLabelDto[];
}

export function toEstLabelDto(label: EstLabel, isDefault: boolean): EstLabelDto {
  return {
    label: label.label,
    kind: label.kind,
    ...labelTarget(label),
    keySpec: label.keySpec,
    serverKeygen: label.serverKeygen,
    attestation: label.attestation,
    allocation: label.allocation,
    default: isDefault,
    path: `/.well-known/est/${label.label}`,
    createdAt: label.createdAt,
  };
}

export class ServerKeygenQueryDto {
  @ApiPropertyOptional({
    enum: ['p12'],
    description:
      'p12: answer the key, its certificate and the chain as one PKCS #12 file (`application/x-pkcs12`, attachment) encrypted with the ' +
      'password sent in the `X-Pkcs12-Password` header (8-128 characters; PBES2/AES-256-CBC, docs/downloads.md) instead of multipart/mixed',
  })
  @IsOptional() @IsIn(['p12'])
  format?: 'p12';
}
