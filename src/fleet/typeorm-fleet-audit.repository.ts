import { Injectable } from '@nestjs/common';
import { FleetAuditEntity } from '../database/entities/fleet-audit.entity';
import { FleetAuditFindingEntity } from '../database/entities/fleet-audit-finding.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { AuditFinding, FleetAudit } from './fleet-audit';
import { FleetAuditRepository } from './fleet-audit.repository';

@Injectable()
export class TypeOrmFleetAuditRepository extends FleetAuditRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(audit: FleetAudit): Promise<void> {
    await this.db.insert(FleetAuditEntity, { ...audit, parameters: JSON.stringify(audit.parameters), summary: audit.summary ? JSON.stringify(audit.summary) : null });
  }

  async finish(id: string, status: 'done' | 'failed', at: string, summary: FleetAudit['summary']): Promise<void> {
    await this.db.sql('UPDATE fleet_audits SET status = ?, finished_at = ?, summary = ? WHERE id = ?', [status, at, JSON.stringify(summary), id]);
  }

  async find(id: string): Promise<FleetAudit | null> {
    const [row] = await this.db.select(FleetAuditEntity, 'id = ?', [id]);
    return row ? toAudit(row) : null;
  }

  async latest(): Promise<FleetAudit | null> {
    const [row] = await this.db.select(FleetAuditEntity, '1 = 1', [], ' ORDER BY started_at DESC LIMIT 1');
    return row ? toAudit(row) : null;
  }

  async list(limit: number): Promise<FleetAudit[]> {
    return (await this.db.select(FleetAuditEntity, '1 = 1', [], ` ORDER BY started_at DESC LIMIT ${Number(limit)}`)).map(toAudit);
  }

  async insertFindings(findings: AuditFinding[]): Promise<void> {
    for (const finding of findings) {
      await this.db.insert(FleetAuditFindingEntity, {
        ...finding,
        details: JSON.stringify(finding.details),
        remediationResult: finding.remediationResult ? JSON.stringify(finding.remediationResult) : null,
      });
    }
  }

  async findings(auditId: string, afterId: string | undefined, limit: number): Promise<AuditFinding[]> {
    const rows = afterId
      ? await this.db.select(FleetAuditFindingEntity, 'audit_id = ? AND id > ?', [auditId, afterId], ` ORDER BY id LIMIT ${Number(limit)}`)
      : await this.db.select(FleetAuditFindingEntity, 'audit_id = ?', [auditId], ` ORDER BY id LIMIT ${Number(limit)}`);
    return rows.map(toFinding);
  }

  async finding(auditId: string, findingId: string): Promise<AuditFinding | null> {
    const [row] = await this.db.select(FleetAuditFindingEntity, 'audit_id = ? AND id = ?', [auditId, findingId]);
    return row ? toFinding(row) : null;
  }

  async markRemediated(findingId: string, at: string, result: Record<string, unknown>): Promise<boolean> {
    const rows = await this.db.sql('UPDATE fleet_audit_findings SET remediated_at = ?, remediation_result = ? WHERE id = ? AND remediated_at IS NULL RETURNING id', [at, JSON.stringify(result), findingId]);
    return rows.length === 1;
  }
}

function toAudit(row: FleetAuditEntity): FleetAudit {
  return {
    ...row,
    status: row.status as FleetAudit['status'],
    trigger: row.trigger as FleetAudit['trigger'],
    parameters: JSON.parse(row.parameters) as FleetAudit['parameters'],
    summary: row.summary ? (JSON.parse(row.summary) as FleetAudit['summary']) : null,
  };
}

function toFinding(row: FleetAuditFindingEntity): AuditFinding {
  return {
    ...row,
    type: row.type as AuditFinding['type'],
    severity: row.severity as AuditFinding['severity'],
    details: JSON.parse(row.details) as Record<string, unknown>,
    remediation: row.remediation as AuditFinding['remediation'],
    remediationResult: row.remediationResult ? (JSON.parse(row.remediationResult) as Record<string, unknown>) : null,
  };
}
