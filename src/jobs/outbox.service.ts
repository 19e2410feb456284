import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors';
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
}

/**
 * The durable outbox (DESIGN "Side effects on AWS"). `enqueue` joins the caller's transaction, so a job
 * exists exactly when the state change that needs it committed. A poller claims due jobs in batches,
 * runs them, and reschedules failures with exponential backoff and full jitter until OUTBOX_MAX_ATTEMPTS,
 * then dead-letters them. Several processes may poll one database: claims are decided there.
 */
@Injectable()
export class OutboxService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Outbox');
  private readonly handlers = new Map<string, OutboxHandler>();
  private readonly worker = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly repository: OutboxRepository,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

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
      runAfter: now,
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

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
  }

  /** Claims and runs one batch of due jobs; returns how many ran. */
  async pollOnce(): Promise<number> {
    const now = this.clock.now();
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
    try {
      if (!handler) throw new Error(`no handler for job kind ${job.kind}`);
      await handler.run(job.payload, job);
      await this.repository.finish(job.id, this.worker, { status: 'done', now: this.clock.now().toISOString() });
      this.metrics.outboxJobs.inc({ kind: job.kind, outcome: 'done' });
    } catch (err) {
      const message = err instanceof DomainError ? `${err.code}: ${err.message}` : (err as Error).message;
      const now = this.clock.now();
      if (job.attempts >= this.config.outbox.maxAttempts) {
        this.logger.error(`job ${job.id} (${job.kind}) dead after ${job.attempts} attempts: ${message}`);
        await this.repository.finish(job.id, this.worker, { status: 'dead', lastError: message, now: now.toISOString() });
        await handler?.onDead?.(job.payload, message).catch((e: unknown) => this.logger.error(`onDead failed: ${(e as Error).message}`));
        this.metrics.outboxJobs.inc({ kind: job.kind, outcome: 'dead' });
        return;
      }
      const delay = this.backoff(job.attempts);
      this.logger.warn(`job ${job.id} (${job.kind}) attempt ${job.attempts} failed, retry in ${delay} ms: ${message}`);
      await this.repository.finish(job.id, this.worker, {
        status: 'pending',
        runAfter: new Date(now.getTime() + delay).toISOString(),
        lastError: message,
        now: now.toISOString(),
      });
      this.metrics.outboxJobs.inc({ kind: job.kind, outcome: 'retry' });
    }
  }

  /** Exponential backoff with full jitter: a random delay up to base·2^(attempt-1), capped. */
  private backoff(attempt: number): number {
    const { backoffBaseMs, backoffMaxMs } = this.config.outbox;
    const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.max(backoffBaseMs / 2, Math.floor(Math.random() * ceiling));
  }
}
