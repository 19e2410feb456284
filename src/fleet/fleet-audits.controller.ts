import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsNumber, IsOptional, Max, Min } from 'class-validator';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured, ProblemGroups } from '../common/openapi';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/pipes';
import { AuditFinding, FINDING_TYPES, FleetAudit } from './fleet-audit';
import { FleetAuditsService } from './fleet-audits.service';
import { Idempotent } from '../common/idempotency';

class StartAuditDto {
  @ApiPropertyOptional({ type: 'integer', default: 30, minimum: 1, maximum: 3650 }) @IsOptional() @IsInt() @Min(1) @Max(3650) deviceExpiryDays?: number;
  @ApiPropertyOptional({ type: 'integer', default: 90, minimum: 1, maximum: 3650 }) @IsOptional() @IsInt() @Min(1) @Max(3650) caExpiryDays?: number;
  @ApiPropertyOptional({ type: 'integer', default: 14, minimum: 1, maximum: 3650 }) @IsOptional() @IsInt() @Min(1) @Max(3650) claimExpiryDays?: number;
  @ApiPropertyOptional({ default: 0.9, minimum: 0.01, maximum: 1 }) @IsOptional() @IsNumber() @Min(0.01) @Max(1) claimQuotaFraction?: number;
  @ApiPropertyOptional({ type: 'integer', default: 200, minimum: 0, maximum: 100000, description: 'AWS IoT-registered devices whose attached policies are read' })
  @IsOptional() @Type(() => Number) @IsInt() @Min(0) @Max(100_000)
  policySample?: number;
}

class FindingDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) auditId: string;
  @ApiProperty({ enum: FINDING_TYPES }) type: string;
  @ApiProperty({ enum: ['high', 'medium', 'low'] }) severity: string;
  @ApiProperty({ example: 'certificate' }) resourceType: string;
  @ApiProperty({ description: 'The affected resource: certificate id (AWS certificateId for AWS findings), authority, claim, policy name, or a group' }) resourceId: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) details: Record<string, unknown>;
  @ApiProperty({ nullable: true, type: String, enum: ['push-iot-status', 'revoke-in-iot', 'open-rotation-campaign'] }) remediation: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) remediatedAt: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true }) remediationResult: Record<string, unknown> | null;
}

class AuditSummaryDto {
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' } }) byType: Record<string, number>;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' } }) bySeverity: Record<string, number>;
  @ApiProperty({ type: 'integer' }) total: number;
  @ApiPropertyOptional() error?: string;
}

class FleetAuditDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['running', 'done', 'failed'] }) status: string;
  @ApiProperty({ enum: ['manual', 'scheduled'] }) trigger: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) parameters: object;
  @ApiProperty({ format: 'date-time' }) startedAt: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) finishedAt: string | null;
  @ApiProperty({ type: AuditSummaryDto, nullable: true }) summary: AuditSummaryDto | null;
  @ApiPropertyOptional({ type: [FindingDto], description: 'On GET /v1/fleet/audits/{id}: a page of findings' }) findings?: FindingDto[];
  @ApiPropertyOptional({ nullable: true, type: String }) nextCursor?: string | null;
}

class FleetAuditListDto {
  @ApiProperty({ type: [FleetAuditDto] }) items: FleetAuditDto[];
}

@ApiTags('fleet')
@Controller('v1/fleet/audits')
export class FleetAuditsController {
  constructor(private readonly audits: FleetAuditsService) {}

  @Post()
  @Idempotent()
  @HttpCode(202)
  @RequirePermission(Permission.RunAudits)
  @ApiOperation({
    summary: 'Start a fleet audit',
    description:
      'Runs in the background (GET shows it): device certificates expiring (per CA, claim and profile), CA certificates expiring, ' +
      'certificates revoked or superseded here but ACTIVE in AWS IoT, certificates ACTIVE in AWS IoT under our CAs that we never issued, ' +
      'weak keys, claims near quota or expiry, and permissive AWS IoT policies attached to our devices. Also runs every ' +
      'FLEET_AUDIT_INTERVAL_HOURS. Requires the operator or admin role.',
  })
  @ApiAcceptedResponse({ type: FleetAuditDto })
  @ApiSecured()
  async startAudit(@Ctx() ctx: RequestContext, @Body() body: StartAuditDto): Promise<FleetAuditDto> {
    return this.audits.start(ctx, body);
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'Recent fleet audits, newest first', description: 'The last 100, with their summaries.' })
  @ApiOkResponse({ type: FleetAuditListDto })
  @ApiSecured()
  async listAudits(): Promise<FleetAuditListDto> {
    return { items: await this.audits.list(100) };
  }

  @Get(':id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'A fleet audit with a page of its findings', description: 'Findings with severity, affected resource and available remediation; pass nextCursor as cursor.' })
  @ApiIdParam('fleet audit')
  @ApiOkResponse({ type: FleetAuditDto })
  @ApiSecured()
  @ApiProblems(Errors.auditNotFound)
  async getAudit(@Param('id', UuidParam) id: string, @Query() query: PageQueryDto): Promise<FleetAuditDto> {
    const audit: FleetAudit = await this.audits.get(id);
    const page = await this.audits.findings(id, query.cursor, query.limit ?? 100);
    return { ...audit, findings: page.items, nextCursor: page.nextCursor };
  }

  @Post(':id/findings/:findingId/remediate')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.RunAudits)
  @ApiOperation({
    summary: 'Run a finding’s remediation',
    description: 'push-iot-status: set REVOKED/INACTIVE in AWS IoT; revoke-in-iot: revoke an unknown certificate there; open-rotation-campaign: a campaign over exactly the expiring certificates. Once per finding; audited. Requires the operator or admin role.',
  })
  @ApiIdParam('fleet audit')
  @ApiParam({ name: 'findingId', schema: { type: 'string', format: 'uuid' } })
  @ApiOkResponse({ type: FindingDto })
  @ApiSecured()
  // open-rotation-campaign opens a campaign; the others call AWS IoT.
  @ApiProblems(Errors.findingNotFound, Errors.findingNotRemediable, Errors.campaignEmpty, ProblemGroups.iotCall)
  async remediateFinding(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Param('findingId', UuidParam) findingId: string): Promise<AuditFinding> {
    return this.audits.remediate(ctx, id, findingId);
  }
}
