import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsISO8601, IsObject, IsOptional, IsString, IsUUID, Length, Matches, MaxLength, ValidateNested } from 'class-validator';
import { NO_CONTROL_CHARS } from '../common/text';
import { REVOCATION_REASONS, RevocationReason } from '../pki/crl';
import { MAX_CSR_PEM_LENGTH } from '../pki/csr';
import { THING_NAME_PATTERN } from '../pki/profiles';
import { Campaign, CampaignMember, CampaignProgress } from './rotation';

export class CampaignSelectorDto {
  @ApiPropertyOptional({ format: 'uuid' }) @IsOptional() @IsUUID() authorityId?: string;
  @ApiPropertyOptional({ format: 'uuid' }) @IsOptional() @IsUUID() claimId?: string;
  @ApiPropertyOptional({ example: 'device' }) @IsOptional() @IsString() @Length(1, 32) profile?: string;
  @ApiPropertyOptional({ format: 'date-time', description: 'Certificates whose notAfter is before this time' })
  @IsOptional() @IsISO8601({ strict: true })
  expiringBefore?: string;
  @ApiPropertyOptional({ type: [String], maxItems: 1000 })
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(1000) @Matches(THING_NAME_PATTERN, { each: true, message: 'thingNames must be AWS IoT thing names' })
  thingNames?: string[];
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
  @ApiProperty({ type: CampaignSelectorDto }) selector: CampaignSelectorDto;
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

export class RenewDto {
  @ApiProperty({ description: 'PKCS #10 CSR (PEM) of the new key', maxLength: MAX_CSR_PEM_LENGTH })
  @IsString() @MaxLength(MAX_CSR_PEM_LENGTH)
  csr: string;
}

export function toCampaignDto(campaign: Campaign, progress: CampaignProgress): CampaignDto {
  const { total: _total, ...rest } = campaign;
  return { ...rest, progress };
}
