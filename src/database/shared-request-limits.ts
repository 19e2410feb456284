import { Logger } from '@nestjs/common';
import { Pool } from 'pg';
import { RateLimitVerdict, ReplicaRateLimits, SharedLimitEntry } from '../common/request-rate-limits';

/** Rows of buckets that are full again (same as absent) are deleted this often. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Station and claim request limits across replicas on PostgreSQL (docs/limits.md, "Replica-wide limits"): one row per
 * bucket, as GCRA (the bucket's theoretical arrival time, database clock). A check locks the rows it needs (in key
 * order, so two checks never deadlock), decides for all of them at once and moves them on only when every one has a
 * token: the same all-or-nothing rule as the in-memory tables. Its own small pool, as shared-pacing.ts explains.
 */
export class SharedRequestLimits extends ReplicaRateLimits {
  private readonly pool: Pool;
  private readonly logger = new Logger('RateLimits');
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(url: string) {
    super();
    this.pool = new Pool({ connectionString: url, max: 4, idleTimeoutMillis: 30_000 });
    this.pool.on('error', (err) => this.logger.warn(`rate limit connection failed: ${err.message}`));
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  async takeAll(entries: readonly SharedLimitEntry[]): Promise<RateLimitVerdict> {
    if (entries.length === 0) return { ok: true };
    const byKey = new Map(entries.map((entry) => [`${entry.dimension}:${entry.key}`, entry]));
    const keys = [...byKey.keys()].sort();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO request_limit_buckets (key, next_slot_ms) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING', [keys]);
      const { rows } = await client.query<{ key: string; next_slot_ms: number; now: number }>(
        'SELECT key, next_slot_ms::float8 AS next_slot_ms, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now FROM request_limit_buckets WHERE key = ANY($1) ORDER BY key FOR UPDATE',
        [keys],
      );
      const next: number[] = [];
      let refusal: { dimension: string; retryAfterSeconds: number } | undefined;
      for (const row of rows) {
        const { dimension, setting } = byKey.get(row.key)!;
        const intervalMs = (setting.windowSeconds * 1000) / setting.limit;
        const toleranceMs = (setting.limit - 1) * intervalMs;
        const slot = Number(row.next_slot_ms);
        const now = Number(row.now);
        if (now >= slot - toleranceMs) next.push(Math.max(slot, now) + intervalMs);
        else {
          const wait = Math.max(1, Math.ceil((slot - toleranceMs - now) / 1000));
          if (!refusal || wait > refusal.retryAfterSeconds) refusal = { dimension, retryAfterSeconds: wait };
        }
      }
      if (!refusal) {
        await client.query('UPDATE request_limit_buckets AS b SET next_slot_ms = v.t FROM unnest($1::text[], $2::float8[]) AS v(key, t) WHERE b.key = v.key', [
          rows.map((row) => row.key),
          next,
        ]);
      }
      await client.query('COMMIT');
      return refusal ? { ok: false, ...refusal } : { ok: true };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.pruneTimer);
    await this.pool.end();
  }

  private async prune(): Promise<void> {
    try {
      await this.pool.query('DELETE FROM request_limit_buckets WHERE next_slot_ms < extract(epoch FROM clock_timestamp()) * 1000');
    } catch (err) {
      this.logger.warn(`pruning rate limit buckets failed: ${(err as Error).message}`);
    }
  }
}
