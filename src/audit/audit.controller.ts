import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../auth/auth.decorators';
import { Permission } from '../auth/roles';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { AuditEventDto, AuditListDto, AuditQueryDto, AuditVerifyDto } from './audit.dto';
import { StoredAuditEvent } from './audit.repository';
import { AuditService } from './audit.service';

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @RequirePermission(Permission.ReadAudit)
  @ApiOperation({ summary: 'Audit events in sequence order, with filters and cursor pagination' })
  @ApiOkResponse({ type: AuditListDto })
  @ApiSecured()
  @ApiProblems(400)
  async listAuditEvents(@Query() query: AuditQueryDto): Promise<AuditListDto> {
    const page = await this.audit.list({ ...query, limit: query.limit ?? 100 });
    return { items: page.items.map(toDto), nextCursor: page.nextCursor };
  }

  @Get('verify')
  @RequirePermission(Permission.ReadAudit)
  @ApiOperation({ summary: 'Recompute the hash chain and name the first broken event' })
  @ApiOkResponse({ type: AuditVerifyDto })
  @ApiSecured()
  verifyAuditChain(): Promise<AuditVerifyDto> {
    return this.audit.verify();
  }
}

function toDto(event: StoredAuditEvent): AuditEventDto {
  return {
    seq: event.seq,
    occurredAt: event.occurredAt,
    actor: { type: event.actorType, id: event.actorId, role: event.actorRole },
    action: event.action,
    target: event.targetType && event.targetId ? { type: event.targetType, id: event.targetId } : null,
    requestId: event.requestId,
    sourceIp: event.sourceIp,
    details: event.details,
    prevHash: event.prevHash,
    hash: event.hash,
  };
}
