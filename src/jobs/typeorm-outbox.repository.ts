import { Injectable } from '@nestjs/common';
import { In } from 'typeorm';
import { OutboxJobEntity } from '../database/entities';
import { isUniqueViolation } from '../database/errors';
import { TypeOrmTransactions } from '../database/transactions';
import { OutboxJob, OutboxJobStatus } from './outbox-job';
import { OutboxRepository } from './outbox.repository';

@Injectable()
export class TypeOrmOutboxRepository extends OutboxRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(job: OutboxJob): Promise<boolean> {
    if (job.dedupeKey && (await this.db.manager().existsBy(OutboxJobEntity, { dedupeKey: job.dedupeKey }))) return false;
    try {
      await this.db.manager().insert(OutboxJobEntity, { ...job, payload: JSON.stringify(job.payload) });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
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

  async byTarget(targetId: string): Promise<OutboxJob[]> {
    return (await this.db.manager().find(OutboxJobEntity, { where: { targetId }, order: { createdAt: 'ASC' } })).map(toJob);
  }
}

function toJob(row: OutboxJobEntity): OutboxJob {
  return { ...row, status: row.status as OutboxJobStatus, attempts: Number(row.attempts), payload: JSON.parse(row.payload) as Record<string, unknown> };
}
