import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { ApiSecured } from '../common/openapi';
import { AuditEventDto, AuditListDto, AuditQueryDto, AuditVerifyDto } from './audit.dto';
import { StoredAuditEvent } from './audit.repository';
import { AuditService } from './audit.service';

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @RequirePermission(Permission.ReadAudit)
  @ApiOperation({
    summary: 'Audit events in sequence order, with filters and cursor pagination',
    description:
      'Filters combine with AND. Pass `nextCursor` from a page as `cursor` to get the next one; it is null on the last page. ' +
      'Requires the admin or auditor role.',
  })
  @ApiOkResponse({ type: AuditListDto, description: 'A page of audit events' })
  @ApiSecured()
  async listAuditEvents(@Query() query: AuditQueryDto): Promise<AuditListDto> {
    const page = await this.audit.list({ ...query, limit: query.limit ?? 100 });
    return { items: page.items.map(toDto), nextCursor: page.nextCursor };
  }

  @Get('verify')
  @RequirePermission(Permission.ReadAudit)
  @ApiOperation({
    summary: 'Recompute the hash chain and name the first broken event',
    description: 'Reads the whole log; `ok` is false when an event was altered, removed or reordered. Requires the admin or auditor role.',
  })
  @ApiOkResponse({ type: AuditVerifyDto, description: 'The verification result' })
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
