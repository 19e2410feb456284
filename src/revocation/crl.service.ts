import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AuthoritiesService } from '../authorities/authorities.service';
import { isoSeconds } from '../common/time';
import { RevocationListPublisher } from '../certificates/revocation-list-publisher.port';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { TimeSlicer } from '../common/yield';
import { MetricsService } from '../metrics/metrics.service';
import { AssembledCrl, assembleCrl, crlFrame, CrlEntriesEncoder, CrlFrame, signAssembledCrl } from '../pki/crl';
import { Errors } from '../common/errors';
import { CrlInfo, CrlRepository, StoredCrl } from './crl.repository';
import { CrlWatermarks } from './crl-watermarks';
import { CrlWorker } from './crl-worker';

/**
 * Publishes one CRL per authority. A CRL is regenerated when a revocation happened after it was built
 * (revocation counter, not clocks, so replicas agree), or when less than CRL_REFRESH_BEFORE_SECONDS is
 * left before its nextUpdate; a background sweep does the latter even when nobody asks.
 */
/** Older CRLs are kept for a while (clients may hold one), then pruned. */
const CRLS_KEPT = 20;
/**
 * Without a worker thread (an in-memory SQLite database): revoked entries read and encoded per page; the event loop gets
 * a turn every CRL_SLICE_MS, so a CRL of a million entries never holds up other requests for long (docs/architecture.md "CRLs").
 */
const CRL_PAGE_SIZE = 5000;
/** At most this much encoding between two turns of the event loop. */
const CRL_SLICE_MS = 20;

@Injectable()
export class CrlService implements RevocationListPublisher, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('CRL');
  /** One generation at a time per authority in this process; the database orders replicas. */
  private readonly inFlight = new Map<string, Promise<StoredCrl>>();
  /** The latest CRL of each authority this process built or loaded, so its DER is read from the database once. */
  private readonly latestDer = new Map<string, StoredCrl>();
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly authorities: AuthoritiesService,
    private readonly crls: CrlRepository,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly watermarks: CrlWatermarks,
    private readonly worker: CrlWorker,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The current CRL, regenerated first when it is stale. Checked again after a regeneration, since one
   * already in flight may have started before the revocation that made the CRL stale.
   */
  async current(authorityId: string): Promise<StoredCrl> {
    for (let attempt = 0; ; attempt++) {
      const authority = await this.authorities.get(authorityId);
      this.authorities.assertCertified(authority);
      const latest = await this.crls.latestInfo(authorityId);
      // An offline root outside its signing window cannot sign a new CRL: its last one stays the current one.
      const frozen = !this.authorities.signingAllowed(authority);
      if (latest && (frozen || !this.isStale(latest, authority.revocationCount) || attempt === 3)) {
        const crl = await this.withDer(latest);
        if (crl) return crl;
      }
      await this.refresh(authorityId);
    }
  }

  /** The stored CRL with its DER: from memory when this process already holds it, else read once. */
  private async withDer(info: CrlInfo): Promise<StoredCrl | null> {
    const held = this.latestDer.get(info.authorityId);
    if (held?.crlNumber === info.crlNumber) return held;
    const der = await this.crls.der(info.authorityId, info.crlNumber);
    if (!der) return null;
    const crl = { ...info, der };
    this.remember(crl);
    return crl;
  }

  private remember(crl: StoredCrl): void {
    const held = this.latestDer.get(crl.authorityId);
    if (!held || held.crlNumber < crl.crlNumber) this.latestDer.set(crl.authorityId, crl);
  }

  /** After revocations committed (certificates/): the current CRL, so regenerated now that it is stale. */
  async republish(authorityId: string): Promise<void> {
    await this.current(authorityId);
  }

  /** Builds, signs and stores a new CRL with the next CRL number. */
  refresh(authorityId: string): Promise<StoredCrl> {
    let pending = this.inFlight.get(authorityId);
    if (!pending) {
      pending = this.generate(authorityId).finally(() => this.inFlight.delete(authorityId));
      this.inFlight.set(authorityId, pending);
    }
    return pending;
  }

  onApplicationBootstrap(): void {
    const everyMs = Math.min(this.config.crl.refreshBeforeSeconds * 500, 10 * 60 * 1000);
    this.sweepTimer = setInterval(() => void this.sweep(), everyMs);
    this.sweepTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweepTimer);
  }

  /** Refreshes every authority's CRL that is stale or close to its nextUpdate. */
  async sweep(): Promise<void> {
    for (const authority of await this.authorities.all()) {
      try {
        const latest = await this.crls.latestInfo(authority.id);
        if (!this.authorities.signingAllowed(authority)) continue;
        if (!latest || this.isStale(latest, authority.revocationCount)) await this.refresh(authority.id);
      } catch (err) {
        this.logger.error(`CRL sweep failed for authority ${authority.id}: ${(err as Error).message}`);
      }
    }
  }

  /** Stale: a revocation since, nextUpdate near, or older than a CRL this service published (a restored database). */
  private isStale(crl: CrlInfo, revocationCount: number): boolean {
    const refreshAt = new Date(crl.nextUpdate).getTime() - this.config.crl.refreshBeforeSeconds * 1000;
    const published = this.watermarks.get(crl.authorityId)?.crlNumber ?? 0;
    return crl.revocationsCovered < revocationCount || this.clock.now().getTime() >= refreshAt || crl.crlNumber < published;
  }

  /**
   * The CRL number is taken first (its own short transaction), then the entries are read from one snapshot and encoded
   * straight to DER around the rest of the TBS (on a worker thread: readAndAssemble), and the CRL is signed once here and
   * published unless a newer one was published meanwhile (docs/architecture.md "CRLs").
   */
  private async generate(authorityId: string): Promise<StoredCrl> {
    const now = this.clock.now();
    const watermark = this.watermarks.get(authorityId);
    // A restored older database has an older counter: numbers continue above the highest one ever published.
    const authority = await this.authorities.get(authorityId);
    // Refused before a CRL number is spent (an offline root outside its signing window: AUTHORITY_OFFLINE).
    const issuer = await this.authorities.signingView(authority);
    const crlNumber = await this.authorities.nextCrlNumber(authorityId, (watermark?.crlNumber ?? 0) + 1);
    const thisUpdate = new Date(isoSeconds(now));
    const nextUpdate = new Date(thisUpdate.getTime() + this.config.crl.validitySeconds * 1000);
    // Requests wait for this build anyway (the CRL is stale): the previous DER need not stay in memory beside the new one.
    this.latestDer.delete(authorityId);
    const frame = crlFrame({ issuer: issuer.name, issuerKeyId: issuer.keyId, crlNumber, thisUpdate, nextUpdate }, issuer.signer.algorithm);
    const started = performance.now();
    const { revocationCount, tbs } = await this.readAndAssemble(authorityId, now.toISOString(), frame);
    const assembled = performance.now();
    const rolledBack = watermark !== undefined && revocationCount < watermark.revocationsCovered;
    if (rolledBack && !this.config.crl.allowRollback) {
      // Publishing now would silently un-revoke what the database lost: refuse until an operator decides.
      this.logger.error(
        `authority ${authorityId}: the database counts ${revocationCount} revocation(s), fewer than the ${watermark.revocationsCovered} of CRL ${watermark.crlNumber} already published (restored from an older backup?); no CRL is published until the lost revocations are made again or CRL_ALLOW_ROLLBACK=true (docs/operations.md)`,
      );
      throw Errors.crlRollbackDetected('This authority’s database has fewer revocations than a CRL already published (restored from an older backup?); no CRL is published until an operator acts.');
    }
    const der = await signAssembledCrl(tbs, frame.signatureAlgorithm, issuer.signer);
    const signed = performance.now();
    const crl: StoredCrl = {
      authorityId,
      crlNumber,
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
      revocationsCovered: revocationCount,
      der,
    };
    const published = await this.crls.publish(crl, crlNumber - CRLS_KEPT);
    // Where a slow build spends its time (LOG_LEVEL=debug; docs/benchmarks.md, "CRL").
    this.logger.debug(
      `authority ${authorityId}: CRL ${crlNumber}, ${revocationCount} revocation(s), ${der.length} bytes: read and encoded in ${ms(assembled - started)}, signed in ${ms(signed - assembled)}, stored in ${ms(performance.now() - signed)}`,
    );
    if (!published) {
      // Another replica published a newer CRL while this one was built: that one is the current CRL.
      const latest = await this.crls.latestInfo(authorityId);
      const current = latest && (await this.withDer(latest));
      if (current) return current;
    } else {
      this.remember(crl);
      this.watermarks.record(authorityId, { crlNumber, revocationsCovered: revocationCount }, rolledBack);
      if (rolledBack) this.logger.warn(`authority ${authorityId}: CRL ${crlNumber} published with fewer revocations than CRL ${watermark.crlNumber} (CRL_ALLOW_ROLLBACK=true)`);
    }
    this.metrics.crlsGenerated.inc();
    return crl;
  }

  /**
   * The revoked entries of one snapshot, encoded and assembled into the TBS: on a worker thread with a connection of its
   * own (nothing of it on the event loop), or, for an in-memory SQLite database, page by page on the service's
   * connection. A failed worker publishes nothing: the request gets CRL_BUILD_FAILED and the next one builds again.
   */
  private async readAndAssemble(authorityId: string, now: string, frame: CrlFrame): Promise<{ revocationCount: number; tbs: AssembledCrl }> {
    const source = this.crls.snapshotSource();
    if (source) {
      try {
        return await this.worker.build({ source, authorityId, now, frame });
      } catch (err) {
        this.logger.error(`authority ${authorityId}: the CRL build failed: ${(err as Error).message}`);
        throw Errors.crlBuildFailed('The CRL could not be built; nothing was published. The next request builds it again.');
      }
    }
    const entries = new CrlEntriesEncoder();
    const slicer = new TimeSlicer(CRL_SLICE_MS);
    const { revocationCount } = await this.crls.readRevoked(authorityId, now, CRL_PAGE_SIZE, async (page) => {
      entries.addPage(page);
      await slicer.maybeYield();
    });
    return { revocationCount, tbs: assembleCrl(frame, entries) };
  }
}

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}
