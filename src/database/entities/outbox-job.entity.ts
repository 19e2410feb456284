import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * The durable outbox: side effects on AWS, stored in the same transaction as the state change that needs
 * them, and worked by pollers that claim rows (FOR UPDATE SKIP LOCKED on PostgreSQL).
 */
@Entity('outbox_jobs')
@Index('idx_outbox_jobs_due', ['status', 'runAfter'])
@Index('idx_outbox_jobs_target', ['targetId'])
export class OutboxJobEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 64 }) kind: string;
  @Column({ type: 'text' }) payload: string;
  /** pending | running | done | dead */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ type: 'integer', default: 0 }) attempts: number;
  @Column({ name: 'run_after', type: 'varchar', length: 32 }) runAfter: string;
  @Column({ name: 'locked_by', type: 'varchar', length: 64, nullable: true }) lockedBy: string | null;
  @Column({ name: 'locked_until', type: 'varchar', length: 32, nullable: true }) lockedUntil: string | null;
  @Column({ name: 'last_error', type: 'text', nullable: true }) lastError: string | null;
  /** At most one live (pending or running) job per key; a finished or dead one does not block a new one. */
  @Index('uq_outbox_jobs_live_dedupe', ['dedupeKey'], { unique: true, where: "status IN ('pending', 'running')" })
  @Column({ name: 'dedupe_key', type: 'varchar', length: 200, nullable: true }) dedupeKey: string | null;
  @Column({ name: 'target_type', type: 'varchar', length: 32, nullable: true }) targetType: string | null;
  @Column({ name: 'target_id', type: 'varchar', length: 128, nullable: true }) targetId: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}
