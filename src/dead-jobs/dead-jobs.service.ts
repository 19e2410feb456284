import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { creationPage } from '../common/cursor';
import { Errors } from '../common/errors';
import { Transactions } from '../database/transactions';
import { OutboxJob } from '../jobs/outbox-job';
import { OutboxRepository } from '../jobs/outbox.repository';

/** What an operator sees of a dead job: never its payload (which may hold more than ids), and the error bounded. */
export interface DeadJobView {
  id: string;
  kind: string;
  status: string;
  attempts: number;
  lastError: string | null;
  subject: { type: string; id: string } | null;
  createdAt: string;
  updatedAt: string;
}

const MAX_ERROR_CHARS = 1000;

/**
 * Dead-lettered outbox jobs (docs/operations.md, "Dead jobs"): listed, and retried once the fault is fixed. A retry
 * makes the job pending again with a fresh set of attempts; the outbox pollers then run it as any other job.
 */
@Injectable()
export class DeadJobsService {
  constructor(
    private readonly outbox: OutboxRepository,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
  ) {}

  async list(cursor: string | undefined, limit: number): Promise<{ items: DeadJobView[]; nextCursor: string | null }> {
    const page = await creationPage(cursor, limit, (after, n) => this.outbox.listDead(after, n));
    return { items: page.items.map(toView), nextCursor: page.nextCursor };
  }

  async retry(ctx: RequestContext, id: string): Promise<DeadJobView> {
    const job = await this.outbox.find(id);
    if (!job) throw Errors.jobNotFound(`no outbox job ${id}`);
    if (job.status !== 'dead') throw Errors.jobNotDead(`job ${id} is ${job.status}, not dead`);
    const now = this.clock.now().toISOString();
    await this.transactions.run(async () => {
      const outcome = await this.outbox.revive(id, now);
      if (outcome === 'not-dead') throw Errors.jobNotDead(`job ${id} is no longer dead`);
      if (outcome === 'duplicate') throw Errors.jobNotDead(`a live job with the same dedupe key as job ${id} already does its work`);
      await this.audit.record(ctx, {
        action: 'outbox.job-retried',
        target: { type: 'outbox-job', id },
        details: { kind: job.kind, attempts: job.attempts, lastError: bounded(job.lastError), subject: subjectOf(job) },
      });
    });
    return toView({ ...job, status: 'pending', attempts: 0, runAfter: now, updatedAt: now });
  }
}

function subjectOf(job: OutboxJob): DeadJobView['subject'] {
  return job.targetType && job.targetId ? { type: job.targetType, id: job.targetId } : null;
}

function bounded(error: string | null): string | null {
  return error === null || error.length <= MAX_ERROR_CHARS ? error : `${error.slice(0, MAX_ERROR_CHARS)}…`;
}

function toView(job: OutboxJob): DeadJobView {
  return { id: job.id, kind: job.kind, status: job.status, attempts: job.attempts, lastError: bounded(job.lastError), subject: subjectOf(job), createdAt: job.createdAt, updatedAt: job.updatedAt };
}
