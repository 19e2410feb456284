import { Logger } from '@nestjs/common';
import { Pool } from 'pg';
import { RateLimitVerdict, ReplicaRateLimits, SharedLimitEntry } from '../common/request-rate-limits';

/** At most this many checks share one transaction. */
const MAX_BATCH = 64;
/** Rows of buckets that are full again (same as absent) are deleted this often. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Station and claim request limits across replicas on PostgreSQL (docs/limits.md, "Replica-wide limits"): one row per
 * bucket, as GCRA (the bucket's theoretical arrival time, database clock). A check locks the rows it needs (in key
 * order, so two checks never deadlock), decides for all of them at once and moves them on only when every one has a
 * token: the same all-or-nothing rule as the in-memory tables. Its own small pool, as shared-pacing.ts explains. The
 * checks that arrive while one is in the database are decided together in the next transaction (docs/limits.md):
 * otherwise every station request would hold the claim's row for a transaction of its own, and they queue on it.
 */
export class SharedRequestLimits extends ReplicaRateLimits {
  private readonly pool: Pool;
  private readonly logger = new Logger('RateLimits');
  private readonly pruneTimer: NodeJS.Timeout;
  /** Checks waiting for the next batch (decide), and whether a batch is in the database now. */
  private readonly waiting: { entries: readonly SharedLimitEntry[]; resolve: (verdict: RateLimitVerdict) => void; reject: (err: unknown) => void }[] = [];
  private batchInFlight = false;

  constructor(url: string) {
    super();
    this.pool = new Pool({ connectionString: url, max: 4, idleTimeoutMillis: 30_000 });
    this.pool.on('error', (err) => this.logger.warn(`rate limit connection failed: ${err.message}`));
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  takeAll(entries: readonly SharedLimitEntry[]): Promise<RateLimitVerdict> {
    if (entries.length === 0) return Promise.resolve({ ok: true });
    return new Promise<RateLimitVerdict>((resolve, reject) => {
      this.waiting.push({ entries, resolve, reject });
      if (!this.batchInFlight) void this.drain();
    });
  }

  /** One batch at a time: the checks that arrive while one is in the database form the next. */
  private async drain(): Promise<void> {
    this.batchInFlight = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, MAX_BATCH);
        try {
          const verdicts = await this.decide(batch.map((check) => check.entries));
          batch.forEach((check, i) => check.resolve(verdicts[i]));
        } catch (err) {
          batch.forEach((check) => check.reject(err));
        }
      }
    } finally {
      this.batchInFlight = false;
    }
  }

  /**
   * The checks of one batch, in one transaction of two round trips: the first locks every bucket the batch needs (in
   * key order, so two processes never deadlock), creating the absent ones, and reads them with the database clock;
   * the checks are then decided here one after the other, in arrival order, exactly as if each had had its own
   * transaction; the second round trip writes the buckets that moved and commits. The statements carry their values
   * as literals (escaped by the driver: keys are our dimension names, claim ids, fingerprints and printable station
   * names) so that BEGIN and COMMIT travel with them.
   */
  private async decide(checks: (readonly SharedLimitEntry[])[]): Promise<RateLimitVerdict[]> {
    const requests = checks.map((entries) => new Map(entries.map((entry) => [`${entry.dimension}:${entry.key}`, entry])));
    const keys = [...new Set(requests.flatMap((byKey) => [...byKey.keys()]))].sort();
    const client = await this.pool.connect();
    try {
      const rows = keys.map((key) => `(${client.escapeLiteral(key)}, 0)`).join(', ');
      const results = (await client.query(
        `BEGIN; INSERT INTO request_limit_buckets AS b (key, next_slot_ms) VALUES ${rows} ON CONFLICT (key) DO UPDATE SET next_slot_ms = b.next_slot_ms ` +
          'RETURNING b.key, b.next_slot_ms::float8 AS next_slot_ms, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now',
      )) as unknown as { rows: { key: string; next_slot_ms: number; now: number }[] }[];
      const locked = results[1].rows;
      const slots = new Map(locked.map((row) => [row.key, Number(row.next_slot_ms)]));
      const now = Math.max(...locked.map((row) => Number(row.now)));
      const moved = new Set<string>();
      const verdicts = requests.map((byKey): RateLimitVerdict => {
        const next = new Map<string, number>();
        let refusal: { dimension: string; retryAfterSeconds: number } | undefined;
        for (const [key, { dimension, setting }] of byKey) {
          const intervalMs = (setting.windowSeconds * 1000) / setting.limit;
          const toleranceMs = (setting.limit - 1) * intervalMs;
          const slot = slots.get(key) ?? 0;
          if (now >= slot - toleranceMs) next.set(key, Math.max(slot, now) + intervalMs);
          else {
            const wait = Math.max(1, Math.ceil((slot - toleranceMs - now) / 1000));
            if (!refusal || wait > refusal.retryAfterSeconds) refusal = { dimension, retryAfterSeconds: wait };
          }
        }
        if (refusal) return { ok: false, ...refusal };
        for (const [key, slot] of next) {
          slots.set(key, slot);
          moved.add(key);
        }
        return { ok: true };
      });
      const updates = [...moved].map((key) => {
        const slot = slots.get(key)!;
        if (!Number.isFinite(slot)) throw new Error(`rate limit bucket ${key}: slot ${slot} is not a number`);
        return `(${client.escapeLiteral(key)}, ${slot}::float8)`;
      });
      await client.query(
        updates.length === 0 ? 'COMMIT' : `UPDATE request_limit_buckets AS b SET next_slot_ms = v.t FROM (VALUES ${updates.join(', ')}) AS v(key, t) WHERE b.key = v.key; COMMIT`,
      );
      return verdicts;
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
