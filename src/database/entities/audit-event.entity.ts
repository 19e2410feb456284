import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity('audit_events')
@Index('idx_audit_action', ['action', 'seq'])
@Index('idx_audit_target', ['targetId', 'seq'])
export class AuditEventEntity {
  @PrimaryColumn({ type: 'integer' }) seq: number;
  @Column({ name: 'occurred_at', type: 'varchar', length: 32 }) occurredAt: string;
  @Column({ name: 'actor_type', type: 'varchar', length: 32 }) actorType: string;
  @Column({ name: 'actor_id', type: 'varchar', length: 128, nullable: true }) actorId: string | null;
  @Column({ name: 'actor_role', type: 'varchar', length: 32, nullable: true }) actorRole: string | null;
  @Column({ type: 'varchar', length: 64 }) action: string;
  @Column({ name: 'target_type', type: 'varchar', length: 32, nullable: true }) targetType: string | null;
  @Column({ name: 'target_id', type: 'varchar', length: 128, nullable: true }) targetId: string | null;
  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true }) requestId: string | null;
  @Column({ name: 'source_ip', type: 'varchar', length: 64, nullable: true }) sourceIp: string | null;
  @Column({ type: 'text' }) details: string;
  @Column({ name: 'prev_hash', type: 'varchar', length: 64 }) prevHash: string;
  @Column({ type: 'varchar', length: 64 }) hash: string;
}
