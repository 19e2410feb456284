/** The rate knobs both stand-ins have. */
export interface RateKnobs {
  /** Sustained requests per second for the whole account before ThrottlingException; 0 = unlimited. */
  tps: number;
  /** Token-bucket capacity (requests allowed at once after a quiet spell); defaults to one second of tps. */
  burst?: number;
  /** Per-operation quotas on top of `tps` (AWS publishes some per API), e.g. `{ RegisterCertificate: 10 }`. */
  operationTps?: Record<string, number>;
  /** Probability in [0, 1] that any call is throttled regardless of rate. */
  throttleProbability: number;
}

/** A token bucket: `rate` tokens a second, at most `capacity` stored; a rate of 0 or less is unlimited. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private rate: number,
    private capacity: number,
  ) {
    this.tokens = capacity;
  }

  /** New rate and capacity; a bucket that was unlimited starts full, any other keeps what it holds (up to the capacity). */
  reconfigure(rate: number, capacity: number): void {
    this.refill();
    const wasUnlimited = this.rate <= 0;
    this.rate = rate;
    this.capacity = capacity;
    this.tokens = wasUnlimited ? capacity : Math.min(this.tokens, capacity);
  }

  take(): boolean {
    if (this.rate <= 0) return true;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens left (for the stats hooks); null when unlimited. */
  level(): number | null {
    if (this.rate <= 0) return null;
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

/**
 * Decides which calls get ThrottlingException: a random share (`throttleProbability`), then the per-operation bucket
 * (`operationTps`), then the account's bucket (`tps`, `burst`). Counts what it refused.
 */
export class Throttle {
  /** Calls refused so far. */
  throttled = 0;
  readonly throttledByOperation = new Map<string, number>();
  private readonly bucket: TokenBucket;
  private readonly operationBuckets = new Map<string, TokenBucket>();

  /** `knobs` is read on every call; after changing the rates, call configure(). */
  constructor(private readonly knobs: () => RateKnobs) {
    this.bucket = new TokenBucket(knobs().tps, capacity(knobs()));
  }

  /** Takes up changed rates. */
  configure(): void {
    const knobs = this.knobs();
    this.bucket.reconfigure(knobs.tps, capacity(knobs));
    for (const [operation, bucket] of this.operationBuckets) {
      const rate = knobs.operationTps?.[operation] ?? 0;
      bucket.reconfigure(rate, rate);
    }
  }

  /** Whether the call may go ahead; a refusal is counted. */
  admit(operation: string): boolean {
    const knobs = this.knobs();
    if (knobs.throttleProbability > 0 && Math.random() < knobs.throttleProbability) return this.refuse(operation);
    const rate = knobs.operationTps?.[operation] ?? 0;
    let operationBucket = this.operationBuckets.get(operation);
    if (!operationBucket && rate > 0) {
      operationBucket = new TokenBucket(rate, rate);
      this.operationBuckets.set(operation, operationBucket);
    }
    if (operationBucket && !operationBucket.take()) return this.refuse(operation);
    if (!this.bucket.take()) return this.refuse(operation);
    return true;
  }

  /** Tokens left in the account's bucket; null when unlimited. */
  level(): number | null {
    return this.bucket.level();
  }

  private refuse(operation: string): false {
    this.throttled++;
    this.throttledByOperation.set(operation, (this.throttledByOperation.get(operation) ?? 0) + 1);
    return false;
  }
}

function capacity(knobs: RateKnobs): number {
  return knobs.burst ?? knobs.tps;
}
