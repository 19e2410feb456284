import { isIPv4, isIPv6 } from 'node:net';

/**
 * Request rate limits (docs/limits.md): one token bucket per key (a source address, an API key, a claim, a station),
 * `limit` requests at once after a quiet spell, refilled at `limit` per `windowSeconds`. Kept in this process's memory:
 * with n processes (WORKERS, replicas) a caller that spreads its requests over all of them gets n times the limit.
 */
export interface RateLimitSetting {
  limit: number;
  windowSeconds: number;
}

const WINDOWS: Record<string, number> = { s: 1, sec: 1, second: 1, min: 60, minute: 60, h: 3600, hour: 3600 };

/** Reads "600/min", "20/s", "10000/h"; "0" or "off" = no limit (null). Throws a message saying what is expected. */
export function parseRateLimitSetting(raw: string): RateLimitSetting | null {
  const value = raw.trim().toLowerCase();
  if (value === '0' || value === 'off') return null;
  const match = /^(\d{1,9})\s*\/\s*([a-z]+)$/.exec(value);
  if (!match || !(match[2] in WINDOWS) || Number(match[1]) < 1) {
    throw new Error(`must look like "600/min" (a positive count per s, min or h) or be 0/off, got "${raw}"`);
  }
  return { limit: Number(match[1]), windowSeconds: WINDOWS[match[2]] };
}

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill, ms. */
  at: number;
}

/** Keys one table keeps at most; beyond that, full buckets (same as absent) are forgotten first, then the oldest. */
export const MAX_TRACKED_KEYS = 100_000;

/** The buckets of one dimension (every source address, every API key…). */
export class RateLimitTable {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    readonly dimension: string,
    readonly setting: RateLimitSetting,
    private readonly maxKeys = MAX_TRACKED_KEYS,
  ) {
    this.perMs = setting.limit / (setting.windowSeconds * 1000);
  }

  /** The key's bucket refilled to `now` (created full when absent; not stored until a token is taken). */
  peek(key: string, now: number): Bucket {
    const bucket = this.buckets.get(key);
    if (!bucket) return { tokens: this.setting.limit, at: now };
    return { tokens: Math.min(this.setting.limit, bucket.tokens + (now - bucket.at) * this.perMs), at: now };
  }

  take(key: string, bucket: Bucket): void {
    bucket.tokens -= 1;
    if (!this.buckets.has(key) && this.buckets.size >= this.maxKeys) this.forget(bucket.at);
    this.buckets.set(key, bucket);
  }

  /** Whole seconds until the bucket holds a token again (at least 1). */
  secondsUntilToken(bucket: Bucket): number {
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }

  private forget(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.setting.limit) this.buckets.delete(key);
    }
    // Still full of busy keys: forget the oldest tenth (they start again with a full bucket, which only errs towards letting through).
    const excess = this.buckets.size - Math.floor(this.maxKeys * 0.9);
    if (excess > 0) {
      let n = 0;
      for (const key of this.buckets.keys()) {
        if (n++ >= excess) break;
        this.buckets.delete(key);
      }
    }
  }
}

export type RateLimitVerdict = { ok: true } | { ok: false; dimension: string; retryAfterSeconds: number };

/**
 * Takes one token from each (table, key) at once, or from none: a request refused by one limit (a station over its
 * own limit) spends nothing of the others (its claim's), so one station cannot starve the others of its claim.
 * A null table (limit off) is skipped. When refused, names the dimension that waits longest and how long.
 */
export function takeAll(entries: readonly (readonly [RateLimitTable | null, string])[], now: number = performance.now()): RateLimitVerdict {
  const peeked: [RateLimitTable, string, Bucket][] = [];
  let refusal: { dimension: string; retryAfterSeconds: number } | undefined;
  for (const [table, key] of entries) {
    if (!table) continue;
    const bucket = table.peek(key, now);
    if (bucket.tokens >= 1) peeked.push([table, key, bucket]);
    else {
      const wait = table.secondsUntilToken(bucket);
      if (!refusal || wait > refusal.retryAfterSeconds) refusal = { dimension: table.dimension, retryAfterSeconds: wait };
    }
  }
  if (refusal) return { ok: false, ...refusal };
  for (const [table, key, bucket] of peeked) table.take(key, bucket);
  return { ok: true };
}

/**
 * The key of a source address: an IPv4 address as it is, an IPv6 address by its /64 (one subscriber's network: a
 * client with IPv6 has a whole /64 to draw addresses from). An IPv4-mapped IPv6 address counts as the IPv4 address.
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return '-';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIPv4(address) || !isIPv6(address)) return address;
  const [head, tail = ''] = address.split('%')[0].split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') && tail ? tail.split(':') : [];
  // An embedded IPv4 tail counts as two groups; only the first four groups matter here.
  const groups = [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** One bucket to take from in the replica-wide store: its dimension, its setting and the caller's key. */
export interface SharedLimitEntry {
  dimension: string;
  setting: RateLimitSetting;
  key: string;
}

/**
 * The station and claim limits held across replicas (docs/limits.md, "Replica-wide limits"): like `takeAll`, one
 * token from every bucket or from none, in a store all replicas share. Bound only on PostgreSQL; on SQLite (one
 * process) the in-memory tables are the whole truth.
 */
export abstract class ReplicaRateLimits {
  abstract takeAll(entries: readonly SharedLimitEntry[]): Promise<RateLimitVerdict>;
}
