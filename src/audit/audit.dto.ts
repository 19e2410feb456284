import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsISO8601, IsOptional, IsString, Length, Matches } from 'class-validator';
import { ACTOR_TYPES } from '../common/actor';
import { ROLES } from '../common/roles';
import { PageQueryDto } from '../common/page-query.dto';
import { NO_CONTROL_CHARS } from '../common/text';

export class AuditQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ example: 'certificate.revoked' })
  @IsOptional() @Matches(/^[a-z.-]{1,64}$/, { message: 'action must look like certificate.revoked' })
  action?: string;

  @ApiPropertyOptional({ description: 'Events about this target id' })
  @IsOptional() @IsString() @Length(1, 128) @Matches(NO_CONTROL_CHARS, { message: 'targetId must not contain control characters' })
  targetId?: string;

  @ApiPropertyOptional({ description: 'Events by this actor (API key id)' })
  @IsOptional() @IsString() @Length(1, 128) @Matches(NO_CONTROL_CHARS, { message: 'actorId must not contain control characters' })
  actorId?: string;

  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional() @IsISO8601({ strict: true })
  since?: string;

  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional() @IsISO8601({ strict: true })
  until?: string;
}

export class AuditActorDto {
  @ApiProperty({ enum: ACTOR_TYPES, description: 'api-key: a person or system (id = key id); claim-certificate / device-certificate: a station or device (id = certificate fingerprint); aws-iot-rule: the AWS IoT events endpoint; system: the service itself' }) type: string;
  @ApiProperty({ nullable: true, type: String }) id: string | null;
  @ApiProperty({ nullable: true, type: String, enum: ROLES, description: 'The API key’s role; null for other actors' }) role: string | null;
}

export class AuditTargetDto {
  @ApiProperty() type: string;
  @ApiProperty() id: string;
}

export class AuditEventDto {
  @ApiProperty({ type: 'integer' }) seq: number;
  @ApiProperty({ format: 'date-time' }) occurredAt: string;
  @ApiProperty({ type: AuditActorDto }) actor: AuditActorDto;
  @ApiProperty({ example: 'certificate.issued' }) action: string;
  @ApiProperty({ type: AuditTargetDto, nullable: true }) target: AuditTargetDto | null;
  @ApiProperty({ nullable: true, type: String }) requestId: string | null;
  @ApiProperty({ nullable: true, type: String }) sourceIp: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) details: Record<string, unknown>;
  @ApiProperty() prevHash: string;
  @ApiProperty() hash: string;
}

export class AuditListDto {
  @ApiProperty({ type: [AuditEventDto] }) items: AuditEventDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor: string | null;
}

export class AuditVerifyDto {
  @ApiProperty() ok: boolean;
  @ApiProperty({ type: 'integer', description: 'Events checked before the first broken one (all of them when ok)' }) checked: number;
  @ApiProperty({ nullable: true, type: 'integer', description: 'Sequence number of the first event that fails verification' })
  firstBrokenSeq: number | null;
}
