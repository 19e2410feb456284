import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A fleet audit run. */
@Entity('fleet_audits')
@Index('idx_fleet_audits_started', ['startedAt'])
export class FleetAuditEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  /** running | done | failed */
  @Column({ type: 'varchar', length: 16 }) status: string;
  /** manual | scheduled */
  @Column({ type: 'varchar', length: 16 }) trigger: string;
  /** JSON of the parameters (expiry windows). */
  @Column({ type: 'text' }) parameters: string;
  @Column({ name: 'started_at', type: 'varchar', length: 32 }) startedAt: string;
  @Column({ name: 'finished_at', type: 'varchar', length: 32, nullable: true }) finishedAt: string | null;
  /** JSON counts by type and severity, or the failure. */
  @Column({ type: 'text', nullable: true }) summary: string | null;
}
