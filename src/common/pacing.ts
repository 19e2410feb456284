import { RateLimiter } from './rate-limiter';

/** Paces its callers: `acquire` resolves when the caller may make one call within the budget. */
export interface Pacer {
  acquire(): Promise<void>;
}

/**
 * Pacing budgets by key (`iot:<target>:<Operation>`, `kms:<account>`), each `ratePerSecond` with up to `burst` calls at
 * once after a quiet spell. The local implementation paces this process alone; on PostgreSQL the budget holds across
 * every replica sharing the database (database/shared-pacing.ts, docs/limits.md "Replica-wide budgets"). Pacers of one
 * key share one budget: asking again for a key returns the same pacer.
 */
export abstract class Pacing {
  abstract pacer(key: string, ratePerSecond: number, burst?: number): Pacer;
}

/** Budgets of this process only (SQLite, one process; unit tests). */
export class LocalPacing extends Pacing {
  private readonly pacers = new Map<string, Pacer>();

  pacer(key: string, ratePerSecond: number, burst?: number): Pacer {
    let pacer = this.pacers.get(key);
    if (!pacer) {
      pacer = new RateLimiter(ratePerSecond, burst);
      this.pacers.set(key, pacer);
    }
    return pacer;
  }
}

/**
 * A lease on a named piece of periodic work (the fleet-audit schedule…), so that it runs on one replica at a time
 * (docs/limits.md "Periodic work"). `take` takes or renews the lease for `ttlMs`; it is refused while another holder's
 * lease has not expired. A holder that dies stops renewing, and its lease passes to another replica after `ttlMs`.
 */
export abstract class Leases {
  abstract take(name: string, ttlMs: number): Promise<boolean>;
  abstract release(name: string): Promise<void>;
}
