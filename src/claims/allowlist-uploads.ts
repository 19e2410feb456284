import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { Semaphore, SemaphoreFullError } from '../common/semaphore';
import { isoSeconds } from '../common/time';
import { yieldToEventLoop } from '../common/yield';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { Claim } from './claim';
import { ClaimRepository } from './claim.repository';

/**
 * Serials written per transaction. better-sqlite3 is synchronous: a transaction holds the event loop for its whole
 * length (about 2 ms for 1,000 rows; 10-20 ms when its commit runs a WAL checkpoint), and the loop gets a turn
 * between transactions, so health checks, OCSP and other requests are answered all through a million serials.
 */
const ALLOWLIST_CHUNK_ROWS = 1000;
/** Serials of a retired list deleted per transaction (by key range). */
const PURGE_CHUNK_ROWS = 2000;
/** A staging list untouched this long belongs to an upload that died with its process (no live upload idles that long). */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;
/**
 * Retired lists an upload deletes before it reads its body: few, so that housekeeping (lists of other claims
 * included) does not hold up the admin's upload; the rest go after its swap (RECLAIM_AFTER_UPLOAD).
 */
const RECLAIM_BEFORE_UPLOAD = 1;
/** Retired lists an upload deletes after its swap, while it still holds its slot. */
const RECLAIM_AFTER_UPLOAD = 100;
/** Retry-After of a refused upload: about the time a one-million-serial upload takes. */
const BUSY_RETRY_AFTER_SECONDS = 10;

/**
 * Replaces claims' allow-lists from streamed uploads without stalling the service and all or nothing:
 * - the new list is written as a separate, staging version in short transactions, with the event loop free in
 *   between (the exchange keeps reading the list in force meanwhile);
 * - one short transaction then points the claim at the new version and retires the old one (with the audit event);
 * - a failed or interrupted upload retires its staging version, so the list in force never changes; a crash leaves
 *   a staging version that nothing reads, retired once it has been idle for an hour;
 * - retired versions are deleted in chunks by the uploads that follow (one before an upload reads its body, the rest
 *   after its swap; a failure there is logged and does not fail the upload).
 * Uploads are bounded per process (ALLOWLIST_UPLOAD_CONCURRENCY at once, ALLOWLIST_UPLOAD_QUEUE waiting, the rest
 * refused with 503 ALLOWLIST_UPLOADS_BUSY and Retry-After). A waiting upload has not read its body yet: TCP
 * back-pressure holds it at the client, so waiting costs a socket and no memory.
 */
@Injectable()
export class AllowlistUploads {
  private readonly logger = new Logger('AllowlistUploads');
  private readonly slots: Semaphore;

  constructor(
    private readonly repository: ClaimRepository,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.slots = new Semaphore(config.claims.allowlistUploadConcurrency, config.claims.allowlistUploadQueue);
  }

  /** Replaces the claim's allow-list with the serials `batches` yields; a failure while reading them changes nothing. */
  async replace(ctx: RequestContext, claimId: string, batches: AsyncIterable<string[]>): Promise<{ claim: Claim; size: number }> {
    // Refused before waiting for a slot (claims are never deleted, so the answer holds).
    if (!(await this.repository.findById(claimId))) throw Errors.claimNotFound(`no claim with id ${claimId}`);
    try {
      return await this.slots.run(() => this.upload(ctx, claimId, batches));
    } catch (err) {
      if (err instanceof SemaphoreFullError) {
        throw Errors.allowlistUploadsBusy('too many allow-list uploads are in progress; retry later', { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS });
      }
      throw err;
    }
  }

  private async upload(ctx: RequestContext, claimId: string, batches: AsyncIterable<string[]>): Promise<{ claim: Claim; size: number }> {
    // Housekeeping, not the upload's business: a failure here is logged and the upload goes on.
    await this.reclaimGuarded(RECLAIM_BEFORE_UPLOAD);
    const allowlistId = await this.repository.openAllowlist(claimId, this.now());
    let size: number;
    try {
      let pending: string[] = [];
      for await (const batch of batches) {
        pending.push(...batch);
        if (pending.length >= ALLOWLIST_CHUNK_ROWS) {
          await this.write(allowlistId, pending);
          pending = [];
        }
      }
      if (pending.length > 0) await this.write(allowlistId, pending);
      size = await this.transactions.run(async () => {
        const size = await this.repository.activateAllowlist(claimId, allowlistId, this.now());
        if (size === null) {
          throw Errors.allowlistUploadSuperseded('the upload was reclaimed as abandoned before it could be activated; nothing changed, upload the list again');
        }
        await this.audit.record(ctx, { action: 'claim.allowlist-replaced', target: { type: 'claim', id: claimId }, details: { size } });
        return size;
      });
    } catch (err) {
      await this.discard(allowlistId);
      throw err;
    }
    // The version just replaced goes now, while this upload still holds its slot; the replacement stands either way.
    await this.reclaimGuarded(RECLAIM_AFTER_UPLOAD);
    return { claim: (await this.repository.findById(claimId))!, size };
  }

  /** Writes the serials in short transactions of at most ALLOWLIST_CHUNK_ROWS each, with a turn for the event loop after each. */
  private async write(allowlistId: number, serials: string[]): Promise<void> {
    for (let i = 0; i < serials.length; i += ALLOWLIST_CHUNK_ROWS) {
      const chunk = serials.slice(i, i + ALLOWLIST_CHUNK_ROWS);
      await this.transactions.run(() => this.repository.addToAllowlist(allowlistId, chunk, this.now()));
      await yieldToEventLoop();
    }
  }

  /** A failed upload's version is retired and its serials deleted; if that fails too, a later upload finishes it. */
  private async discard(allowlistId: number): Promise<void> {
    try {
      await this.repository.retireAllowlist(allowlistId, this.now());
      await this.purge(allowlistId);
    } catch (err) {
      this.logger.warn(`could not discard staging allow-list ${allowlistId} (a later upload will): ${(err as Error).message}`);
    }
  }

  /** Deletes up to `maxLists` retired (and abandoned) versions, chunk by chunk; a failure is logged, a later upload finishes. */
  private async reclaimGuarded(maxLists: number): Promise<void> {
    try {
      const staleBefore = isoSeconds(new Date(this.clock.now().getTime() - ABANDONED_AFTER_MS));
      for (const allowlistId of await this.repository.reclaimableAllowlists(staleBefore, this.now(), maxLists)) await this.purge(allowlistId);
    } catch (err) {
      this.logger.warn(`could not delete retired allow-lists (a later upload will): ${(err as Error).message}`);
    }
  }

  private async purge(allowlistId: number): Promise<void> {
    while ((await this.transactions.run(() => this.repository.purgeAllowlist(allowlistId, PURGE_CHUNK_ROWS))) > 0) await yieldToEventLoop();
  }

  private now(): string {
    return isoSeconds(this.clock.now());
  }
}
