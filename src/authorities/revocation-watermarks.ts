import { Injectable } from '@nestjs/common';

/**
 * What this process knows of each authority's revocation counter (raised by every revocation, in its
 * transaction), so that reusing a signed OCSP answer needs no database read per request.
 *
 * - A revocation committed by this process forgets the authority's counter at once (`revoked`), before the
 *   revoking request is answered: until the counter is read again, no answer of that authority is reused.
 * - Counters are learnt from database reads (`learn`), which count only if no revocation of this process
 *   happened while they were in flight (an epoch per authority): a read that began before a revocation
 *   committed must not vouch for answers made before it.
 * - Revocations committed by other processes (replicas on one PostgreSQL database) are learnt by the reader's
 *   periodic poll of all counters.
 */
@Injectable()
export class RevocationWatermarks {
  private readonly counts = new Map<string, number>();
  private readonly revocationEpochs = new Map<string, number>();

  /** The counter as last learnt, or undefined when it is unknown (never read, or a revocation since). */
  current(authorityId: string): number | undefined {
    return this.counts.get(authorityId);
  }

  /** Taken before reading a counter from the database, and handed back to `learn` with what was read. */
  epoch(authorityId: string): number {
    return this.revocationEpochs.get(authorityId) ?? 0;
  }

  /** Every authority's epoch now, for a read of all counters (an authority not listed is at epoch 0). */
  epochs(): ReadonlyMap<string, number> {
    return new Map(this.revocationEpochs);
  }

  /** A revocation of the authority committed in this process. */
  revoked(authorityId: string): void {
    this.counts.delete(authorityId);
    this.revocationEpochs.set(authorityId, this.epoch(authorityId) + 1);
  }

  /** A counter read from the database after `epoch(authorityId)` was taken. Counters only grow. */
  learn(authorityId: string, count: number, epoch: number): void {
    if (this.epoch(authorityId) !== epoch) return;
    const known = this.counts.get(authorityId);
    if (known === undefined || count > known) this.counts.set(authorityId, count);
  }
}
