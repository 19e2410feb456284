import { Injectable } from '@nestjs/common';
import { AuditEventEntity } from '../database/entities/audit-event.entity';
import { AuditHeadEntity } from '../database/entities/audit-head.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { AuditQuery, AuditRepository, StoredAuditEvent } from './audit.repository';
import { GENESIS_HASH } from './chain';

const HEAD_ID = 1;

@Injectable()
export class TypeOrmAuditRepository extends AuditRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async lockHead(): Promise<{ seq: number; hash: string }> {
    // On PostgreSQL the row lock serialises appends across replicas. SQLite transactions already take
    // turns (one writer per database).
    const lock = this.db.isPostgres ? ' FOR UPDATE' : '';
    const [head] = await this.db.select(AuditHeadEntity, 'id = ?', [HEAD_ID], lock);
    if (!head) throw new Error('audit_head row is missing: migrations were not run');
    return { seq: Number(head.seq), hash: head.hash };
  }

  async appendMany(events: StoredAuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.db.insertMany(AuditEventEntity, events.map(toEntity));
    const last = events[events.length - 1];
    await this.db.sql('UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?', [last.seq, last.hash, HEAD_ID]);
  }

  async list(query: AuditQuery): Promise<StoredAuditEvent[]> {
    const qb = this.db.manager().createQueryBuilder(AuditEventEntity, 'e');
    if (query.action) qb.andWhere('e.action = :action', { action: query.action });
    if (query.targetId) qb.andWhere('e.target_id = :targetId', { targetId: query.targetId });
    if (query.actorId) qb.andWhere('e.actor_id = :actorId', { actorId: query.actorId });
    if (query.since) qb.andWhere('e.occurred_at >= :since', { since: query.since });
    if (query.until) qb.andWhere('e.occurred_at < :until', { until: query.until });
    if (query.afterSeq !== undefined) qb.andWhere('e.seq > :afterSeq', { afterSeq: query.afterSeq });
    const rows = await qb.orderBy('e.seq', 'ASC').limit(query.limit).getMany();
    return rows.map(fromEntity);
  }

  async batchAfter(afterSeq: number, limit: number): Promise<StoredAuditEvent[]> {
    return this.list({ afterSeq, limit });
  }

  async head(): Promise<{ seq: number; hash: string }> {
    const head = await this.db.manager().findOneBy(AuditHeadEntity, { id: HEAD_ID });
    return head ? { seq: head.seq, hash: head.hash } : { seq: 0, hash: GENESIS_HASH };
  }
}

function toEntity(event: StoredAuditEvent): AuditEventEntity {
  return { ...event, details: JSON.stringify(event.details) };
}

function fromEntity(row: AuditEventEntity): StoredAuditEvent {
  return {
    seq: Number(row.seq),
    occurredAt: row.occurredAt,
    actorType: row.actorType,
    actorId: row.actorId,
    actorRole: row.actorRole,
    action: row.action,
    targetType: row.targetType,
    targetId: row.targetId,
    requestId: row.requestId,
    sourceIp: row.sourceIp,
    details: parseDetails(row.details),
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

/** A row edited into invalid JSON must still reach verification (and fail it), not crash it. */
function parseDetails(raw: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { unparseable: raw };
  } catch {
    return { unparseable: raw };
  }
}
