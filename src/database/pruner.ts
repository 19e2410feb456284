import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';

/** Deletes at most `limit` rows expired at `now`; answers how many it deleted. */
export type PruneBatch = (now: string, limit: number) => Promise<number>;

/**
 * Periodic deletion of expired rows (idempotency records, used token ids: docs/operations.md, "Pruning"). Each table
 * is pruned in bounded batches (PRUNE_BATCH_SIZE rows per statement, PRUNE_PAUSE_MS between statements), so a
 * backlog never holds a long transaction or locks out the hot path. Owners register their table at start-up; one
 * `pruneOnce()` pass runs every PRUNE_INTERVAL_SECONDS (deleting the same expired row twice is harmless, so a
 * replica-wide lease can be put around `pruneOnce()` without changing it).
 */
@Injectable()
export class Pruner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Pruner');
  private readonly tables = new Map<string, PruneBatch>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<Record<string, number>>;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  register(table: string, batch: PruneBatch): void {
    this.tables.set(table, batch);
  }

  onApplicationBootstrap(): void {
    const everyMs = this.config.pruning.intervalSeconds * 1000;
    if (everyMs <= 0) return;
    this.timer = setInterval(() => {
      if (!this.running) void this.pruneOnce().catch((err: unknown) => this.logger.warn(`pruning failed: ${(err as Error).message}`));
    }, everyMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass over every registered table: batches until one deletes fewer than a full batch. Answers rows deleted per table. */
  pruneOnce(): Promise<Record<string, number>> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<Record<string, number>> {
    const { batchSize, pauseMs } = this.config.pruning;
    const now = this.clock.now().toISOString();
    const deleted: Record<string, number> = {};
    for (const [table, batch] of this.tables) {
      deleted[table] = 0;
      for (;;) {
        const n = await batch(now, batchSize);
        deleted[table] += n;
        if (n < batchSize || this.stopped) break;
        if (pauseMs > 0) await sleep(pauseMs);
      }
      if (deleted[table] > 0) this.logger.log(`pruned ${deleted[table]} expired row(s) from ${table}`);
    }
    return deleted;
  }
}
