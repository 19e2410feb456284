import { AuditFinding, FleetAudit } from './fleet-audit';

/** Port: audits and their findings. */
export abstract class FleetAuditRepository {
  abstract insert(audit: FleetAudit): Promise<void>;
  abstract finish(id: string, status: 'done' | 'failed', at: string, summary: FleetAudit['summary']): Promise<void>;
  abstract find(id: string): Promise<FleetAudit | null>;
  abstract latest(): Promise<FleetAudit | null>;
  abstract list(limit: number): Promise<FleetAudit[]>;
  abstract insertFindings(findings: AuditFinding[]): Promise<void>;
  abstract findings(auditId: string, afterId: string | undefined, limit: number): Promise<AuditFinding[]>;
  abstract finding(auditId: string, findingId: string): Promise<AuditFinding | null>;
  /** Marks a finding remediated unless it already is; false when it was. */
  abstract markRemediated(findingId: string, at: string, result: Record<string, unknown>): Promise<boolean>;
}
