import { Logger } from '@nestjs/common';
import { Pool } from 'pg';
import { Pacer, Pacing } from '../common/pacing';

/**
 * Replica-wide pacing on PostgreSQL (docs/limits.md, "Replica-wide budgets"). Each budget is one row holding the
 * budget's next free call slot in the database's clock (GCRA, the generic cell rate algorithm): a replica reserves
 * slots for the callers it has waiting, n at a time, in one atomic UPSERT that moves the row on by n intervals, and
 * lets each caller go at its slot. So the slots of all replicas form one schedule at the budget's rate, and the
 * per-call cost is a fraction of one round trip under load (one reservation serves every caller then waiting, up to
 * a quarter of a second of the budget). A replica that dies loses only the slots it had reserved (at most that quarter
 * second of budget, never more than the rate): nothing to hand back, no heartbeat.
 *
 * The reservations use a small pool of their own, never a connection of the application's pool: a signing call made
 * inside a transaction must not wait for a connection that transactions hold.
 */
export class SharedPacing extends Pacing {
  private readonly pacers = new Map<string, SharedPacer>();
  private readonly pool: Pool;

  constructor(url: string) {
    super();
    // A reservation lost in a database crash costs at most one burst: no need to wait for its commit to reach disk.
    this.pool = new Pool({ connectionString: url, max: 2, idleTimeoutMillis: 30_000, options: '-c synchronous_commit=off' });
    this.pool.on('error', (err) => new Logger('Pacing').warn(`pacing connection failed: ${err.message}`));
  }

  pacer(key: string, ratePerSecond: number, burst = Math.max(1, Math.ceil(ratePerSecond / 20))): Pacer {
    let pacer = this.pacers.get(key);
    if (!pacer) {
      pacer = new SharedPacer((n, intervalMs) => reserve(this.pool, key, n, intervalMs), ratePerSecond, burst);
      this.pacers.set(key, pacer);
    }
    return pacer;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * Reserves n slots `intervalMs` apart; answers how long, from the database's now, until the first one (at or after
 * the budget's next free slot). Atomic under concurrency: the row lock of the UPSERT orders the replicas.
 */
export async function reserve(pool: Pick<Pool, 'query'>, key: string, n: number, intervalMs: number): Promise<number> {
  const result = await pool.query<{ first_in_ms: number }>(
    `WITH c AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now)
     INSERT INTO pacing_budgets AS b (key, next_slot_ms) SELECT $1, c.now + $2 FROM c
     ON CONFLICT (key) DO UPDATE SET next_slot_ms = GREATEST(b.next_slot_ms, (SELECT now FROM c)) + $2
     RETURNING (b.next_slot_ms - $2 - (SELECT now FROM c))::float8 AS first_in_ms`,
    [key, n * intervalMs],
  );
  return Math.max(0, Number(result.rows[0].first_in_ms));
}

/** Waits this long before reserving again after the database failed to answer (the callers keep waiting). */
const RETRY_MS = 500;
/** At most this much of the budget is reserved at once. */
const BATCH_SECONDS = 0.25;
/** The next reservation is sent this long (or two round trips, if longer) before the last reserved slot comes. */
const LEAD_MS = 5;

/**
 * One budget's pacer in this process: callers queue (FIFO); whenever some wait without a slot, one reservation is made
 * for them. While the budget is busy (this process holds slots still to come) the next reservation waits until shortly
 * before the last of them, gathering the callers that arrive meanwhile into one batch: the slots would not come sooner
 * anyway, and the database is asked once per batch instead of once per call. Slot times are taken relative to when the
 * answer arrived (never earlier than the database meant; later by at most the round trip). `burst` lets that many calls
 * go at once after a quiet spell (tolerance of burst − 1 intervals), as the local RateLimiter does.
 */
export class SharedPacer implements Pacer {
  private readonly waiting: (() => void)[] = [];
  private reserving = false;
  private readonly intervalMs: number;
  private readonly toleranceMs: number;
  private readonly maxBatch: number;
  /** Local time of the latest slot handed out. */
  private lastSlotAt = -Infinity;
  private roundTripMs = 1;
  private readonly logger = new Logger('Pacing');

  constructor(
    private readonly reserveSlots: (n: number, intervalMs: number) => Promise<number>,
    ratePerSecond: number,
    burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.intervalMs = 1000 / ratePerSecond;
    this.toleranceMs = (Math.max(1, burst) - 1) * this.intervalMs;
    this.maxBatch = Math.max(1, Math.floor(ratePerSecond * BATCH_SECONDS));
  }

  acquire(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (!this.reserving) void this.reserve();
    });
  }

  private async reserve(): Promise<void> {
    this.reserving = true;
    try {
      while (this.waiting.length > 0) {
        const busyFor = this.lastSlotAt - this.now() - Math.max(LEAD_MS, 2 * this.roundTripMs);
        if (busyFor > 0) await sleep(Math.min(busyFor, BATCH_SECONDS * 1000));
        const callers = this.waiting.splice(0, this.maxBatch);
        const sent = this.now();
        let firstInMs: number;
        try {
          firstInMs = await this.reserveSlots(callers.length, this.intervalMs);
        } catch (err) {
          this.logger.warn(`could not reserve call slots (${(err as Error).message}); retrying in ${RETRY_MS} ms`);
          this.waiting.unshift(...callers);
          await sleep(RETRY_MS);
          continue;
        }
        const answered = this.now();
        this.roundTripMs = 0.8 * this.roundTripMs + 0.2 * (answered - sent);
        callers.forEach((go, k) => {
          const delay = Math.max(0, firstInMs + k * this.intervalMs - this.toleranceMs);
          this.lastSlotAt = Math.max(this.lastSlotAt, answered + delay);
          if (delay === 0) go();
          else setTimeout(go, Math.ceil(delay));
        });
      }
    } finally {
      this.reserving = false;
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
