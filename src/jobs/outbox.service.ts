import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { DomainError, isFinal } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../metrics/metrics.service';
import { NewOutboxJob, OutboxJob } from './outbox-job';
import { OutboxRepository } from './outbox.repository';

/** What a job kind does. It must be idempotent: a job may run again after a crash or a lost lease. */
export interface OutboxHandler {
  run(payload: Record<string, unknown>, job: OutboxJob): Promise<void>;
  /** Called once when the job is given up (dead-lettered), to record the failure where users look. */
  onDead?(payload: Record<string, unknown>, error: string): Promise<void>;
  /**
   * Never dead-letter: after OUTBOX_MAX_ATTEMPTS keep retrying at the longest backoff (and count it in
   * metrics). For jobs whose loss would leave a security hole, such as revocations.
   */
  retryForever?: boolean;
}

/**
 * The durable outbox (docs/architecture.md, "Side effects on AWS (outbox)"). `enqueue` joins the caller's transaction,
 * so a job exists exactly when the state change that needs it committed. A poller claims due jobs in batches,
 * runs them, and reschedules failures with exponential backoff and full jitter until OUTBOX_MAX_ATTEMPTS,
 * then dead-letters them. A final failure (DomainError.final: an AWS hard limit, say) is dead-lettered at once. Several processes may poll one database: claims are decided there.
 */
@Injectable()
export class OutboxService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Outbox');
  private readonly handlers = new Map<string, OutboxHandler>();
  private readonly worker = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;
  private polls = 0;

  constructor(
    private readonly repository: OutboxRepository,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    const gauge = metrics.outboxDeadJobs;
    metrics.collectWith(gauge, async () => {
      const counts = await repository.countDeadByKind();
      gauge.reset();
      for (const { kind, count } of counts) gauge.set({ kind }, count);
    });
  }

  register(kind: string, handler: OutboxHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Stores a job in the current transaction; false when one with the same dedupe key already exists. */
  async enqueue(job: NewOutboxJob): Promise<boolean> {
    const now = this.clock.now().toISOString();
    return this.repository.insert({
      id: randomUUID(),
      kind: job.kind,
      payload: job.payload,
      status: 'pending',
      attempts: 0,
      runAfter: job.runAfter ? job.runAfter.toISOString() : now,
      lockedBy: null,
      lockedUntil: null,
      lastError: null,
      dedupeKey: job.dedupeKey ?? null,
      targetType: job.target?.type ?? null,
      targetId: job.target?.id ?? null,
      createdAt: now,
      updatedAt: now,
    });
  }

  /**
   * When a job with this dedupe key was first queued, among the jobs still kept (finished ones a week): lets a handler
   * tell a first request from a replay queued after the first job finished.
   */
  async firstQueuedAt(dedupeKey: string): Promise<Date | undefined> {
    const createdAt = await this.repository.firstCreatedAt(dedupeKey);
    return createdAt === null ? undefined : new Date(createdAt);
  }

  onApplicationBootstrap(): void {
    if (!this.config.outbox.enabled) return;
    const tick = () => {
      if (this.stopped) return;
      this.polling = this.pollOnce()
        .then(() => undefined)
        .catch((err: unknown) => this.logger.error(`outbox poll failed: ${(err as Error).message}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.config.outbox.pollMs);
        });
    };
    this.timer = setTimeout(tick, this.config.outbox.pollMs);
  }

  /** Before any onApplicationShutdown (where TypeORM closes the database): a poll in flight finishes on an open connection. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
  }

  /** Claims and runs one batch of due jobs; returns how many ran. */
  async pollOnce(): Promise<number> {
    const now = this.clock.now();
    if (++this.polls % 1000 === 0) {
      // Finished jobs are kept a week for inspection, then deleted.
      await this.repository.pruneDone(new Date(now.getTime() - 7 * 86_400_000).toISOString());
    }
    const jobs = await this.repository.claim(
      this.worker,
      now.toISOString(),
      new Date(now.getTime() + this.config.outbox.leaseMs).toISOString(),
      this.config.outbox.batchSize,
    );
    await Promise.all(jobs.map((job) => this.runJob(job)));
    return jobs.length;
  }

  private async runJob(job: OutboxJob): Promise<void> {
    const handler = this.handlers.get(job.kind);
    // Keep the lease while the handler runs, so a slow job is never taken over (and run twice) mid-way.
    const renewEvery = Math.max(50, Math.floor(this.config.outbox.leaseMs / 3));
    const heartbeat = setInterval(() => {
      const until = new Date(this.clock.now().getTime() + this.config.outbox.leaseMs).toISOString();
      void this.repository.extendLease(job.id, this.worker, until).catch((err: unknown) => this.logger.warn(`lease renewal failed for job ${job.id}: ${(err as Error).message}`));
    }, renewEvery);
    let failure: string | undefined;
    let final = false;
    try {
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler.run(job.payload, job);
    } catch (err) {
      failure = err instanceof DomainError ? `${err.code}: ${err.message}` : (err as Error).message;
      // A failure no retry can remove (an AWS hard limit, say): backing off would only delay the news.
      final = isFinal(err);
    } finally {
      clearInterval(heartbeat);
    }
    const now = this.clock.now();
    if (failure === undefined) {
      if (await this.repository.finish(job.id, this.worker, { status: 'done', now: now.toISOString() })) this.metrics.outboxJobs.inc({ kind: job.kind, outcome: 'done' });
      return;
    }
    // A retry-forever job (a revocation) keeps trying even then: an operator may lift the limit, and giving it up
    // would leave a security hole.
    const givingUp = (final || job.attempts >= this.config.outbox.maxAttempts) && !handler?.retryForever;
    if (givingUp) {
      this.logger.error(`job ${job.id} (${job.kind}) dead after ${job.attempts} attempt(s)${final ? ' (a failure no retry can fix)' : ''}: ${failure}`);
      // Only the worker that still holds the job records its death (and tells the handler).
      if (!(await this.repository.finish(job.id, this.worker, { status: 'dead', lastError: failure, now: now.toISOString() }))) return;
      await handler?.onDead?.(job.payload, failure).catch((e: unknown) => this.logger.error(`onDead failed: ${(e as Error).message}`));
      this.metrics.outboxJobs.inc({ kind: job.kind, outcome: 'dead' });
      return;
    }
    const delay = this.backoff(job.attempts);
    this.logger.warn(`job ${job.id} (${job.kind}) attempt ${job.attempts} failed, retry in ${delay} ms: ${failure}`);
    await this.repository.finish(job.id, this.worker, {
      status: 'pending',
      runAfter: new Date(now.getTime() + delay).toISOString(),
      lastError: failure,
      now: now.toISOString(),
    });
    this.metrics.outboxJobs.inc({ kind: job.kind, outcome: job.attempts >= this.config.outbox.maxAttempts ? 'overdue' : 'retry' });
  }

  /** Exponential backoff with full jitter: a random delay up to base·2^(attempt-1), capped. */
  private backoff(attempt: number): number {
    const { backoffBaseMs, backoffMaxMs } = this.config.outbox;
    const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.max(backoffBaseMs / 2, Math.floor(Math.random() * ceiling));
  }
}
