import { Global, Inject, Injectable, Logger, Module } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { Errors } from '../common/errors';
import { RateLimitTable, RateLimitVerdict, ReplicaRateLimits, SharedLimitEntry, sourceKey, takeAll } from '../common/request-rate-limits';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../metrics/metrics.service';

/**
 * Routes the source limit does not count: the health probes, which a load balancer calls from one address (the same
 * address as all the traffic it forwards, without TRUST_PROXY) and must not see refused. OCSP is answered before the
 * framework (revocation/ocsp-http.ts) and is not counted either (docs/limits.md).
 */
export const SOURCE_LIMIT_EXEMPT_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** The dimensions of the request rate limits, as named in a 429's `rateLimit` member and in metrics. */
export type RateLimitDimension = 'source' | 'api-key' | 'claim' | 'station';

/**
 * Request rate limits (docs/limits.md), one table per dimension, in this process's memory; on PostgreSQL the station
 * and claim limits (and the device certificate's) are held across replicas instead (ReplicaRateLimits), falling back to
 * this process's tables when the database does not answer. The source address is
 * checked in an onRequest hook before anything else runs (app.factory.ts); the API key by the guards once the key is
 * known, the claim and the station by the station authentication, the device certificate by the device
 * authentication, each before any work is done for the caller. A refusal is a 429 RATE_LIMITED with Retry-After.
 */
@Injectable()
export class RequestLimits {
  private readonly source: RateLimitTable | null;
  private readonly apiKeys: RateLimitTable | null;
  private readonly claims: RateLimitTable | null;
  private readonly stations: RateLimitTable | null;

  private readonly logger = new Logger('RateLimits');

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly metrics: MetricsService,
    @Inject(ReplicaRateLimits) private readonly shared: ReplicaRateLimits | null,
  ) {
    const table = (dimension: RateLimitDimension, setting: AppConfig['rateLimits']['source']) => (setting ? new RateLimitTable(dimension, setting) : null);
    this.source = table('source', config.rateLimits.source);
    this.apiKeys = table('api-key', config.rateLimits.apiKey);
    this.claims = table('claim', config.rateLimits.claim);
    this.stations = table('station', config.rateLimits.station);
  }

  /** The caller's address (request.ip: X-Forwarded-For's client with TRUST_PROXY, else the TCP peer). */
  checkSource(request: FastifyRequest): void {
    if (SOURCE_LIMIT_EXEMPT_PATHS.has(request.routeOptions?.url ?? '')) return;
    this.check([[this.source, sourceKey(request.ip)]]);
  }

  checkApiKey(keyId: string): void {
    this.check([[this.apiKeys, keyId]]);
  }

  /**
   * A station of a claim: its own bucket (the claim certificate, and the station name a JWT gives in `sub`) and the
   * claim's, taken together or not at all, so a station past its own limit spends nothing of the claim's.
   */
  checkStation(claimId: string, certificateFingerprint: string, stationName: string | null): Promise<void> {
    return this.checkAcrossReplicas([
      [this.stations, `${certificateFingerprint} ${stationName ?? ''}`],
      [this.claims, claimId],
    ]);
  }

  /** A device authenticating by its certificate (renewal, EST re-enrollment): the station limit, per certificate. */
  checkDevice(certificateFingerprint: string): Promise<void> {
    return this.checkAcrossReplicas([[this.stations, certificateFingerprint]]);
  }

  private async checkAcrossReplicas(entries: [RateLimitTable | null, string][]): Promise<void> {
    if (!this.shared) return this.check(entries);
    const shared: SharedLimitEntry[] = entries.flatMap(([table, key]) => (table ? [{ dimension: table.dimension, setting: table.setting, key }] : []));
    let verdict: RateLimitVerdict;
    try {
      verdict = await this.shared.takeAll(shared);
    } catch (err) {
      this.logger.warn(`replica-wide rate limits unavailable (${(err as Error).message}); this process's limits apply`);
      return this.check(entries);
    }
    this.refuseUnless(verdict);
  }

  private check(entries: [RateLimitTable | null, string][]): void {
    this.refuseUnless(takeAll(entries));
  }

  private refuseUnless(verdict: RateLimitVerdict): void {
    if (verdict.ok) return;
    this.metrics.rateLimited.inc({ dimension: verdict.dimension });
    throw Errors.rateLimited(`too many requests for this ${verdict.dimension.replace('-', ' ')}; retry in ${verdict.retryAfterSeconds} s`, {
      rateLimit: verdict.dimension,
      retryAfterSeconds: verdict.retryAfterSeconds,
    });
  }
}

/** Global, so that the authenticators of higher layers (certificates/, claims/, est/) reach the one instance. */
@Global()
@Module({ providers: [RequestLimits], exports: [RequestLimits] })
export class RequestLimitsModule {}
