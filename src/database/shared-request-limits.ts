import { Logger } from '@nestjs/common';
import { Pool } from 'pg';
import { RateLimitVerdict, ReplicaRateLimits, SharedLimitEntry } from '../common/request-rate-limits';

/**
 * One check in one statement (one round trip, its row locks held only while it runs): locks the buckets it needs in
 * key order (so two checks never deadlock), reads them with the database clock taken once they are locked, decides
 * for all of them (GCRA: a token while now >= next slot - tolerance) and moves them all on only when every one has a
 * token. Answers one row per bucket found, each with the verdict and how many were found: a bucket that does not exist
 * yet is neither decided nor moved (takeAll creates it and checks again).
 * $1: the keys, sorted; $2: each bucket's interval, ms; $3: each bucket's tolerance, ms.
 */
const TAKE_ALL = `
WITH input AS (SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) AS i(key, interval_ms, tolerance_ms)),
locked AS (SELECT b.key, b.next_slot_ms::float8 AS slot FROM request_limit_buckets b WHERE b.key = ANY($1::text[]) ORDER BY b.key FOR UPDATE),
clock AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now, count(*)::integer AS found FROM locked),
decided AS (SELECT i.key, i.interval_ms, i.tolerance_ms, l.slot, c.now, c.found FROM input i JOIN locked l ON l.key = i.key CROSS JOIN clock c),
verdict AS (SELECT coalesce(bool_and(now >= slot - tolerance_ms), false) AND min(found) = cardinality($1::text[]) AS ok FROM decided),
moved AS (
  UPDATE request_limit_buckets b SET next_slot_ms = greatest(d.slot, d.now) + d.interval_ms FROM decided d
  WHERE b.key = d.key AND (SELECT ok FROM verdict) RETURNING b.key
)
SELECT d.key, d.slot, d.now, (SELECT ok FROM verdict) AS ok, d.found, (SELECT count(*) FROM moved) AS moved FROM decided d
UNION ALL SELECT NULL, NULL, NULL, false, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM decided)`;
/** Rows of buckets that are full again (same as absent) are deleted this often. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Station and claim request limits across replicas on PostgreSQL (docs/limits.md, "Replica-wide limits"): one row per
 * bucket, as GCRA (the bucket's theoretical arrival time, database clock). A check locks the rows it needs (in key
 * order, so two checks never deadlock), decides for all of them at once and moves them on only when every one has a
 * token: the same all-or-nothing rule as the in-memory tables, in one statement (TAKE_ALL), so that a claim's row is
 * locked only while that statement runs in the database and not over several round trips (every station of the claim
 * queues on it). Its own small pool, as shared-pacing.ts explains.
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
    const intervals = keys.map((key) => (byKey.get(key)!.setting.windowSeconds * 1000) / byKey.get(key)!.setting.limit);
    const tolerances = keys.map((key, i) => (byKey.get(key)!.setting.limit - 1) * intervals[i]);
    for (let attempt = 1; ; attempt++) {
      const { rows } = await this.pool.query<{ key: string; slot: number; now: number; ok: boolean; found: number }>(TAKE_ALL, [keys, intervals, tolerances]);
      if (Number(rows[0].found) < keys.length && attempt === 1) {
        // A bucket never used (or pruned once full): created full, then the check again (the statement only moves
        // buckets it found and locked, so that two first checks of one bucket cannot both start from a full one).
        await this.pool.query('INSERT INTO request_limit_buckets (key, next_slot_ms) SELECT unnest($1::text[]), 0 ON CONFLICT DO NOTHING', [keys]);
        continue;
      }
      if (Number(rows[0].found) < keys.length) throw new Error('rate limit buckets vanished while being checked');
      if (rows[0].ok) return { ok: true };
      let refusal: { dimension: string; retryAfterSeconds: number } | undefined;
      for (const row of rows) {
        const i = keys.indexOf(row.key);
        const [slot, now] = [Number(row.slot), Number(row.now)];
        if (now >= slot - tolerances[i]) continue;
        const wait = Math.max(1, Math.ceil((slot - tolerances[i] - now) / 1000));
        if (!refusal || wait > refusal.retryAfterSeconds) refusal = { dimension: byKey.get(row.key)!.dimension, retryAfterSeconds: wait };
      }
      return { ok: false, ...refusal! };
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
