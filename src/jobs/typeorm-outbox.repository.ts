import { Injectable } from '@nestjs/common';
import { In, LessThan } from 'typeorm';
import { OutboxJobEntity } from '../database/entities/outbox-job.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { OutboxJob, OutboxJobStatus } from './outbox-job';
import { OutboxRepository } from './outbox.repository';

@Injectable()
export class TypeOrmOutboxRepository extends OutboxRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(job: OutboxJob): Promise<boolean> {
    // ON CONFLICT … DO NOTHING (against the partial unique index of live jobs), not catch-the-violation:
    // on PostgreSQL a violation would abort the caller's whole transaction.
    const rows = await this.db.sql(
      `INSERT INTO outbox_jobs (id, kind, payload, status, attempts, run_after, locked_by, locked_until, last_error, dedupe_key, target_type, target_id, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (dedupe_key) WHERE status IN ('pending', 'running') DO NOTHING RETURNING id`,
      [job.id, job.kind, JSON.stringify(job.payload), job.status, job.attempts, job.runAfter, job.lockedBy, job.lockedUntil, job.lastError, job.dedupeKey, job.targetType, job.targetId, job.createdAt, job.updatedAt],
    );
    return rows.length > 0;
  }

  async extendLease(id: string, worker: string, lockedUntil: string): Promise<boolean> {
    return this.db.run(async () => {
      const result = await this.db.manager().update(OutboxJobEntity, { id, lockedBy: worker, status: 'running' }, { lockedUntil });
      return (result.affected ?? 0) > 0;
    });
  }

  async pruneDone(before: string): Promise<void> {
    await this.db.run(() => this.db.manager().delete(OutboxJobEntity, { status: 'done', updatedAt: LessThan(before) }));
  }

  async claim(worker: string, now: string, lockedUntil: string, limit: number): Promise<OutboxJob[]> {
    return this.db.run(async () => {
      // SKIP LOCKED: a row another worker is claiming right now is passed over, not waited for.
      const lock = this.db.isPostgres ? ' FOR UPDATE SKIP LOCKED' : '';
      const due = await this.db.sql<{ id: string }>(
        `SELECT id FROM outbox_jobs WHERE (status = 'pending' AND run_after <= ?) OR (status = 'running' AND locked_until < ?) ORDER BY run_after LIMIT ${Number(limit)}${lock}`,
        [now, now],
      );
      if (due.length === 0) return [];
      const ids = due.map((row) => row.id);
      await this.db
        .manager()
        .createQueryBuilder()
        .update(OutboxJobEntity)
        .set({ status: 'running', lockedBy: worker, lockedUntil, updatedAt: now, attempts: () => 'attempts + 1' })
        .where({ id: In(ids) })
        .execute();
      const rows = await this.db.manager().findBy(OutboxJobEntity, { id: In(ids) });
      return rows.map(toJob);
    });
  }

  async finish(id: string, worker: string, outcome: { status: 'done' | 'dead' | 'pending'; runAfter?: string; lastError?: string | null; now: string }): Promise<boolean> {
    return this.db.run(async () => {
      const result = await this.db.manager().update(
        OutboxJobEntity,
        { id, lockedBy: worker, status: 'running' },
        {
          status: outcome.status,
          runAfter: outcome.runAfter ?? outcome.now,
          lastError: outcome.lastError ?? null,
          lockedBy: null,
          lockedUntil: null,
          updatedAt: outcome.now,
        },
      );
      return (result.affected ?? 0) > 0;
    });
  }

  async find(id: string): Promise<OutboxJob | null> {
    const row = await this.db.manager().findOneBy(OutboxJobEntity, { id });
    return row ? toJob(row) : null;
  }

  async listDead(after: { createdAt: string; id: string } | undefined, limit: number): Promise<OutboxJob[]> {
    const rows = await this.db.sql<{ id: string }>(
      `SELECT id FROM outbox_jobs WHERE status = 'dead'${after ? ' AND (created_at > ? OR (created_at = ? AND id > ?))' : ''} ORDER BY created_at, id LIMIT ${Number(limit)}`,
      after ? [after.createdAt, after.createdAt, after.id] : [],
    );
    if (rows.length === 0) return [];
    const jobs = (await this.db.manager().findBy(OutboxJobEntity, { id: In(rows.map((r) => r.id)) })).map(toJob);
    return jobs.sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
  }

  async countDeadByKind(): Promise<{ kind: string; count: number }[]> {
    const rows = await this.db.sql<{ kind: string; count: string | number }>(`SELECT kind, COUNT(*) AS count FROM outbox_jobs WHERE status = 'dead' GROUP BY kind`);
    return rows.map((r) => ({ kind: r.kind, count: Number(r.count) }));
  }

  async revive(id: string, now: string): Promise<'revived' | 'not-dead' | 'duplicate'> {
    const [job] = await this.db.sql<{ dedupeKey: string | null }>(`SELECT dedupe_key AS "dedupeKey" FROM outbox_jobs WHERE id = ? AND status = 'dead'`, [id]);
    if (!job) return 'not-dead';
    // Checked first, not caught: on PostgreSQL a unique violation would abort the caller's transaction (and its audit event).
    if (job.dedupeKey !== null) {
      const live = await this.db.sql(`SELECT id FROM outbox_jobs WHERE dedupe_key = ? AND status IN ('pending', 'running')`, [job.dedupeKey]);
      if (live.length > 0) return 'duplicate';
    }
    const result = await this.db
      .manager()
      .update(OutboxJobEntity, { id, status: 'dead' }, { status: 'pending', attempts: 0, runAfter: now, lockedBy: null, lockedUntil: null, updatedAt: now });
    return (result.affected ?? 0) > 0 ? 'revived' : 'not-dead';
  }

  async firstCreatedAt(dedupeKey: string): Promise<string | null> {
    const row = await this.db.manager().findOne(OutboxJobEntity, { where: { dedupeKey }, order: { createdAt: 'ASC' }, select: { id: true, createdAt: true } });
    return row?.createdAt ?? null;
  }

}

function toJob(row: OutboxJobEntity): OutboxJob {
  return { ...row, status: row.status as OutboxJobStatus, attempts: Number(row.attempts), payload: JSON.parse(row.payload) as Record<string, unknown> };
}
