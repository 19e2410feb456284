import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsInt, IsISO8601, IsObject, IsOptional, IsString, IsUUID, Length, Matches, Max, Min, ValidateNested } from 'class-validator';
import { NO_CONTROL_CHARS } from '../common/text';
import { REVOCATION_REASONS, RevocationReason } from '../pki/crl';
import { THING_NAME_PATTERN } from '../pki/profiles';
import { KEY_BACKENDS, KEY_SPECS, KeyBackend, KeySpec } from '../keys/key-spec';
import { AuthorityDto } from '../authorities/authorities.dto';
import { Campaign, CampaignMember, CampaignProgress } from './rotation';

export class CampaignSelectorDto {
  @ApiPropertyOptional({ format: 'uuid' }) @IsOptional() @IsUUID() authorityId?: string;
  @ApiPropertyOptional({ format: 'uuid' }) @IsOptional() @IsUUID() claimId?: string;
  @ApiPropertyOptional({ example: 'device' }) @IsOptional() @IsString() @Length(1, 32) profile?: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'Certificates whose notAfter is before this time' })
  @IsOptional() @IsISO8601({ strict: true })
  expiringBefore?: string;
  @ApiPropertyOptional({ type: [String], maxItems: 1000, description: 'Exactly these certificates' })
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(1000) @IsUUID('all', { each: true })
  certificateIds?: string[];
  @ApiPropertyOptional({ type: [String], maxItems: 1000 })
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(1000) @Matches(THING_NAME_PATTERN, { each: true, message: 'thingNames must be AWS IoT thing names' })
  thingNames?: string[];
}

/** The selector as a campaign shows it: with the reason for certificates revoked at the deadline, when one was given. */
export class CampaignSelectorViewDto extends CampaignSelectorDto {
  @ApiPropertyOptional({ enum: REVOCATION_REASONS, description: 'Reason for certificates revoked at the deadline (superseded when absent)' })
  revocationReason?: RevocationReason;
}

export class OpenCampaignDto {
  @ApiProperty({ type: CampaignSelectorDto, description: 'Criteria combine with AND; at least one. Active, unexpired certificates only; the set is frozen now.' })
  @IsObject() @ValidateNested() @Type(() => CampaignSelectorDto)
  selector: CampaignSelectorDto;

  @ApiProperty({ example: 'issuing CA retires', maxLength: 500 })
  @IsString() @Length(1, 500) @Matches(NO_CONTROL_CHARS, { message: 'reason must not contain control characters' })
  reason: string;

  @ApiProperty({ format: 'date-time' }) @IsISO8601({ strict: true }) deadline: string;

  @ApiProperty({ enum: ['report', 'revoke'], description: 'At the deadline: only report what is pending, or revoke it' })
  @IsIn(['report', 'revoke'])
  onDeadline: 'report' | 'revoke';

  @ApiPropertyOptional({ enum: REVOCATION_REASONS, default: 'superseded', description: 'Reason for certificates revoked at the deadline' })
  @IsOptional() @IsIn(REVOCATION_REASONS)
  revocationReason?: RevocationReason;

  @ApiPropertyOptional({ enum: ['iot-job'], description: 'iot-job: AWS IoT jobs (≤ 100 things each) tell the targeted things to renew, with the renew URL' })
  @IsOptional() @IsIn(['iot-job'])
  notify?: 'iot-job';
}

export class CampaignProgressDto implements CampaignProgress {
  @ApiProperty({ type: 'integer' }) total: number;
  @ApiProperty({ type: 'integer' }) renewed: number;
  @ApiProperty({ type: 'integer' }) pending: number;
  @ApiProperty({ type: 'integer', description: 'Revoked at the deadline' }) revoked: number;
  @ApiProperty({ type: 'integer', description: 'Pending after the deadline' }) overdue: number;
}

export class CampaignDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['open', 'completed', 'cancelled', 'closed'], description: 'completed: all renewed; closed: the deadline passed and was handled' }) status: string;
  @ApiProperty() reason: string;
  @ApiProperty({ type: CampaignSelectorViewDto }) selector: CampaignSelectorViewDto;
  @ApiProperty({ format: 'date-time' }) deadline: string;
  @ApiProperty({ enum: ['report', 'revoke'] }) onDeadline: string;
  @ApiProperty({ nullable: true, type: String, enum: ['iot-job'] }) notify: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'The (first) AWS IoT job id' }) iotJobId: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) closedAt: string | null;
  @ApiProperty({ type: CampaignProgressDto }) progress: CampaignProgressDto;
}

export class CampaignListItemDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() status: string;
  @ApiProperty() reason: string;
  @ApiProperty({ format: 'date-time' }) deadline: string;
  @ApiProperty({ type: 'integer' }) total: number;
}

export class CampaignListDto {
  @ApiProperty({ type: [CampaignListItemDto] }) items: CampaignListItemDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor: string | null;
}

export class CampaignMemberDto implements CampaignMember {
  @ApiProperty({ format: 'uuid' }) certificateId: string;
  @ApiProperty({ nullable: true, type: String }) thingName: string | null;
  @ApiProperty({ enum: ['pending', 'renewed', 'revoked'] }) state: CampaignMember['state'];
  @ApiProperty({ format: 'uuid', nullable: true, type: String }) renewedById: string | null;
}

export class CampaignMemberListDto {
  @ApiProperty({ type: [CampaignMemberDto] }) items: CampaignMemberDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor: string | null;
}

export class RotationCampaignRequestDto {
  @ApiProperty({ example: 'issuing CA rotated', maxLength: 500 })
  @IsString() @Length(1, 500) @Matches(NO_CONTROL_CHARS, { message: 'reason must not contain control characters' })
  reason: string;

  @ApiProperty({ format: 'date-time' }) @IsISO8601({ strict: true }) deadline: string;

  @ApiProperty({ enum: ['report', 'revoke'] }) @IsIn(['report', 'revoke']) onDeadline: 'report' | 'revoke';

  @ApiPropertyOptional({ enum: REVOCATION_REASONS }) @IsOptional() @IsIn(REVOCATION_REASONS) revocationReason?: RevocationReason;

  @ApiPropertyOptional({ enum: ['iot-job'] }) @IsOptional() @IsIn(['iot-job']) notify?: 'iot-job';
}

export class RotateAuthorityDto {
  @ApiPropertyOptional({ maxLength: 200, description: 'Default: the predecessor’s name' })
  @IsOptional() @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'name must not contain control characters' })
  name?: string;

  @ApiPropertyOptional({ enum: KEY_BACKENDS, description: 'Default: the predecessor’s' }) @IsOptional() @IsIn(KEY_BACKENDS) keyBackend?: KeyBackend;
  @ApiPropertyOptional({ enum: KEY_SPECS, description: 'Default: the predecessor’s' }) @IsOptional() @IsIn(KEY_SPECS) keySpec?: KeySpec;
  @ApiPropertyOptional({ description: 'Adopt an existing KMS key (aws-kms)', maxLength: 2048 }) @IsOptional() @IsString() @Length(1, 2048) kmsKeyId?: string;
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 36500 }) @IsOptional() @IsInt() @Min(1) @Max(36500) validityDays?: number;

  @ApiPropertyOptional({ type: RotationCampaignRequestDto, description: 'Also open a campaign over the predecessor’s certificates' })
  @IsOptional() @IsObject() @ValidateNested() @Type(() => RotationCampaignRequestDto)
  campaign?: RotationCampaignRequestDto;
}

export class RotatedAuthorityDto {
  @ApiProperty({ type: AuthorityDto, description: 'Now retiring' }) predecessor: AuthorityDto;
  @ApiProperty({ type: AuthorityDto }) successor: AuthorityDto;
  @ApiProperty({ type: CampaignDto, nullable: true }) campaign: CampaignDto | null;
}

export function toCampaignDto(campaign: Campaign, progress: CampaignProgress): CampaignDto {
  const { total: _total, ...rest } = campaign;
  return { ...rest, progress };
}
