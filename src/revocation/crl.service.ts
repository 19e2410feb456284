import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AuthoritiesService } from '../authorities/authorities.service';
import { isoSeconds } from '../common/time';
import { CertificateRepository } from '../certificates/certificate.repository';
import { RevocationListPublisher } from '../certificates/revocation-list-publisher.port';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { MetricsService } from '../metrics/metrics.service';
import { signCrl } from '../pki/crl';
import { CrlRepository, StoredCrl } from './crl.repository';

/**
 * Publishes one CRL per authority. A CRL is regenerated when a revocation happened after it was built
 * (revocation counter, not clocks, so replicas agree), or when less than CRL_REFRESH_BEFORE_SECONDS is
 * left before its nextUpdate; a background sweep does the latter even when nobody asks.
 */
/** Older CRLs are kept for a while (clients may hold one), then pruned. */
const CRLS_KEPT = 20;

@Injectable()
export class CrlService implements RevocationListPublisher, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('CRL');
  /** One generation at a time per authority in this process; the database orders replicas. */
  private readonly inFlight = new Map<string, Promise<StoredCrl>>();
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly transactions: Transactions,
    private readonly authorities: AuthoritiesService,
    private readonly certificates: CertificateRepository,
    private readonly crls: CrlRepository,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The current CRL, regenerated first when it is stale. Checked again after a regeneration, since one
   * already in flight may have started before the revocation that made the CRL stale.
   */
  async current(authorityId: string): Promise<StoredCrl> {
    for (let attempt = 0; ; attempt++) {
      const authority = await this.authorities.get(authorityId);
      const latest = await this.crls.latest(authorityId);
      if (latest && (!this.isStale(latest, authority.revocationCount) || attempt === 3)) return latest;
      await this.refresh(authorityId);
    }
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
        const latest = await this.crls.latest(authority.id);
        if (!latest || this.isStale(latest, authority.revocationCount)) await this.refresh(authority.id);
      } catch (err) {
        this.logger.error(`CRL sweep failed for authority ${authority.id}: ${(err as Error).message}`);
      }
    }
  }

  private isStale(crl: StoredCrl, revocationCount: number): boolean {
    const refreshAt = new Date(crl.nextUpdate).getTime() - this.config.crl.refreshBeforeSeconds * 1000;
    return crl.revocationsCovered < revocationCount || this.clock.now().getTime() >= refreshAt;
  }

  private async generate(authorityId: string): Promise<StoredCrl> {
    const now = this.clock.now();
    // One transaction: taking the CRL number row-locks the authority (PostgreSQL), so a revocation either
    // committed before and is read here, or waits and then leaves this CRL stale (revocation counter).
    // A higher CRL number therefore never lists fewer revocations than a lower one.
    const { authority, crlNumber, entries } = await this.transactions.run(async () => {
      const crlNumber = await this.authorities.nextCrlNumber(authorityId);
      const authority = await this.authorities.get(authorityId);
      const entries = await this.certificates.revokedUnexpired(authorityId, now.toISOString());
      return { authority, crlNumber, entries };
    });
    const issuer = await this.authorities.signingView(authority);
    const thisUpdate = new Date(isoSeconds(now));
    const nextUpdate = new Date(thisUpdate.getTime() + this.config.crl.validitySeconds * 1000);
    const der = await signCrl(
      {
        issuer: issuer.name,
        issuerKeyId: issuer.keyId,
        crlNumber,
        thisUpdate,
        nextUpdate,
        entries: entries.map((entry) => ({
          serial: Buffer.from(entry.serial, 'hex'),
          revokedAt: new Date(entry.revokedAt!),
          reason: entry.revocationReason ?? 'unspecified',
        })),
      },
      issuer.signer,
    );
    const crl: StoredCrl = {
      authorityId,
      crlNumber,
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
      revocationsCovered: authority.revocationCount,
      der,
    };
    await this.transactions.run(async () => {
      await this.crls.insert(crl);
      await this.crls.prune(authorityId, crlNumber - CRLS_KEPT);
    });
    this.metrics.crlsGenerated.inc();
    return crl;
  }
}
