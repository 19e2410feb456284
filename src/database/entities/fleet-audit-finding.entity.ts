import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity('fleet_audit_findings')
@Index('idx_fleet_audit_findings_audit', ['auditId', 'id'])
export class FleetAuditFindingEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'audit_id', type: 'varchar', length: 36 }) auditId: string;
  @Column({ type: 'varchar', length: 48 }) type: string;
  @Column({ type: 'varchar', length: 16 }) severity: string;
  @Column({ name: 'resource_type', type: 'varchar', length: 32 }) resourceType: string;
  @Column({ name: 'resource_id', type: 'varchar', length: 200 }) resourceId: string;
  /** JSON facts (affected certificate ids, AWS status, policy findings…). */
  @Column({ type: 'text' }) details: string;
  /** The remediation this finding offers, or null. */
  @Column({ type: 'varchar', length: 48, nullable: true }) remediation: string | null;
  @Column({ name: 'remediated_at', type: 'varchar', length: 32, nullable: true }) remediatedAt: string | null;
  @Column({ name: 'remediation_result', type: 'text', nullable: true }) remediationResult: string | null;
}
