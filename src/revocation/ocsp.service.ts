import { createHash } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Authority } from '../authorities/authority';
import { RevocationWatermarks } from '../authorities/revocation-watermarks';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../metrics/metrics.service';
import { certificateParts } from '../pki/certificate';
import {
  CertIdHash,
  certIdHashes,
  OcspCertId,
  OcspCertStatus,
  OcspErrorStatus,
  OcspRequest,
  OcspRequestError,
  ocspStatusResponse,
  parseOcspRequest,
  signOcspResponse,
} from '../pki/ocsp';
import { OcspSignerUnavailable, OcspSigners } from './ocsp-signers';
import { OcspRepository } from './ocsp.repository';

/** An encoded OCSPResponse and, for one any client may reuse, what HTTP caches need (RFC 5019 §6.2). */
export interface OcspAnswer {
  der: Buffer;
  reusable?: { thisUpdate: Date; nextUpdate: Date; etag: string };
}

interface CachedAnswer {
  answer: OcspAnswer;
  authorityId: string;
  /** The authority's revocation counter read before the statuses this answer was built from. */
  revocationCount: number;
  /** Served until then; afterwards signed afresh, so no client gets an answer with less than half its validity left. */
  reuseUntil: number;
}

const HASHES: CertIdHash[] = ['sha1', 'sha256'];
/** Larger requests (many CertIDs) are answered afresh: the cache is for the common one-certificate question. */
const MAX_CACHED_REQUEST_BYTES = 1024;

/** Key-backend errors that pass: the client should ask again (tryLater), not give up (internalError). */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([Errors.keyBackendUnavailable, Errors.keyBackendThrottled, Errors.kmsNewKeyNotAuthorized, Errors.authorityKeyUnusable].map((kind) => kind.code));

/**
 * The OCSP responder (RFC 6960) for every authority of this service.
 *
 * - Which authority: the CertID's issuerNameHash + issuerKeyHash, matched against hashes precomputed per authority
 *   for SHA-1 and SHA-256. Active, retiring and disabled authorities all answer (disabling stops issuance only).
 * - Status, per certificate row (authority, serial): `revoked` (time, reason) → revoked; every other certificate we
 *   issued → good, including `superseded` ones (still valid until their grace ends, and never revoked by renewal)
 *   and expired ones (RFC 6960 §2.2: "good" only says the certificate is not revoked; validity is the client's
 *   check). A certificate of an authority (an intermediate) is good: CA certificates are never revoked here.
 *   An unknown serial → unknown.
 * - Not ours: when no CertID names one of our authorities, the answer is `unauthorized`, unsigned: RFC 6960 §2.3
 *   (and RFC 5019 §2.2.3) reserve it for a server that cannot answer authoritatively, which is the case, and no
 *   signature we could make would verify for a CA we do not run. One response has one signer, the delegated signer
 *   of the first of our authorities named; CertIDs of any other issuer in the same request are answered `unknown`
 *   (that signer cannot vouch for them; clients send one request per issuer).
 * - Caching: answers to requests without a nonce are kept per request (its exact DER) and tagged with the
 *   authority's revocation counter, which every revocation raises in its own transaction. An answer is reused only
 *   while that counter, as this process knows it (RevocationWatermarks), has not moved: a revocation committed here
 *   makes the next request re-sign, and one committed by another replica does within OCSP_REVOCATION_POLL_MS (each
 *   process reads all counters that often). Answers containing `unknown` are not kept (random serials must not fill
 *   the cache), nor answers to requests over MAX_CACHED_REQUEST_BYTES.
 */
@Injectable()
export class OcspService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('OCSP');
  /** `${hash}:${issuerNameHash hex}:${issuerKeyHash hex}` → authority. */
  private readonly issuers = new Map<string, Authority>();
  /** `${parentId}:${serial}` → the authority whose CA certificate that is. */
  private readonly caCertificates = new Map<string, Authority>();
  private indexedCount = -1;
  private indexing?: Promise<void>;
  /** Request DER (latin1) → answer; least recently used first. */
  private readonly cache = new Map<string, CachedAnswer>();
  private readonly responses: Counter<'status' | 'cache'>;
  /** Cache hits not yet added to the counter: the hot path adds here, the counter collects at each scrape. */
  private uncountedHits = 0;
  private pollTimer?: NodeJS.Timeout;
  private poll?: Promise<void>;

  constructor(
    private readonly authorities: AuthoritiesService,
    private readonly repository: OcspRepository,
    private readonly signers: OcspSigners,
    private readonly clock: Clock,
    private readonly watermarks: RevocationWatermarks,
    metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.responses = metrics.ocspResponses;
    metrics.collectWith(this.responses, () => this.countHits());
  }

  onApplicationBootstrap(): void {
    this.pollTimer = setInterval(() => void this.pollRevocationCounts(), this.config.ocsp.revocationPollMs);
    this.pollTimer.unref();
  }

  /** Before the database closes: no poll is left half-way. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.pollTimer);
    await this.poll;
  }

  /** Reads every authority's revocation counter: how revocations committed by other replicas reach this cache. */
  private pollRevocationCounts(): Promise<void> {
    this.poll ??= this.learnRevocationCounts().finally(() => (this.poll = undefined));
    return this.poll;
  }

  private async learnRevocationCounts(): Promise<void> {
    const epochs = this.watermarks.epochs();
    try {
      for (const { authorityId, count } of await this.repository.revocationCounts()) this.watermarks.learn(authorityId, count, epochs.get(authorityId) ?? 0);
    } catch (err) {
      this.logger.warn(`Reading the revocation counters failed: ${(err as Error).message}`);
    }
  }

  /**
   * The hot path, synchronous and without a database read: the answer already signed for exactly this request, if
   * it may still be reused and the authority's revocation counter, as this process knows it, is still the one the
   * answer was made at. Undefined otherwise: `answer` decides then.
   */
  reuse(body: Buffer): OcspAnswer | undefined {
    if (body.length > MAX_CACHED_REQUEST_BYTES) return undefined;
    const key = body.toString('latin1');
    const cached = this.cache.get(key);
    if (!cached || this.clock.now().getTime() >= cached.reuseUntil) return undefined;
    if (this.watermarks.current(cached.authorityId) !== cached.revocationCount) return undefined;
    this.touch(key, cached);
    this.uncountedHits++;
    return cached.answer;
  }

  /**
   * Answers a DER OCSPRequest: from the cache when `reuse` can, else afresh. Never throws: every failure is an
   * OCSPResponse status (RFC 6960 §2.3).
   */
  async answer(body: Buffer): Promise<OcspAnswer> {
    const reused = this.reuse(body);
    if (reused) return reused;
    let request: OcspRequest;
    try {
      request = parseOcspRequest(body);
    } catch (err) {
      if (!(err instanceof OcspRequestError)) this.logger.error(`OCSP request parsing failed: ${(err as Error).stack}`);
      return this.failure('malformedRequest');
    }
    try {
      return await this.respond(request, body);
    } catch (err) {
      if (err instanceof OcspSignerUnavailable) return this.failure(err.status);
      if (err instanceof DomainError && TRANSIENT_CODES.has(err.code)) {
        this.logger.warn(`OCSP answered tryLater: ${err.message}`);
        return this.failure('tryLater');
      }
      this.logger.error(`OCSP internal error: ${(err as Error).stack ?? String(err)}`);
      return this.failure('internalError');
    }
  }

  private failure(status: OcspErrorStatus): OcspAnswer {
    this.responses.inc({ status, cache: 'none' });
    return { der: ocspStatusResponse(status) };
  }

  private countHits(): void {
    if (this.uncountedHits === 0) return;
    this.responses.inc({ status: 'successful', cache: 'hit' }, this.uncountedHits);
    this.uncountedHits = 0;
  }

  /** Most recently used last: the first entry is the one to evict. */
  private touch(key: string, cached: CachedAnswer): void {
    this.cache.delete(key);
    this.cache.set(key, cached);
  }

  private async respond(request: OcspRequest, body: Buffer): Promise<OcspAnswer> {
    const issuers = await this.issuersOf(request.certIds);
    const responder = issuers.find((issuer): issuer is Authority => issuer !== undefined);
    if (!responder) return this.failure('unauthorized');

    const cacheable = !request.nonce && this.config.ocsp.cacheMaxEntries > 0 && body.length <= MAX_CACHED_REQUEST_BYTES;
    const cacheKey = cacheable ? body.toString('latin1') : undefined;

    const signer = await this.signers.forAuthority(responder);
    const ours = request.certIds.filter((certId, i) => issuers[i] === responder && certId.serial !== null).map((certId) => certId.serial!);
    const serials = [...new Set(ours)];
    // Only a reusable answer needs the counter it is tagged with.
    const epoch = this.watermarks.epoch(responder.id);
    const { revocationCount, states } =
      cacheKey === undefined ? { revocationCount: -1, states: await this.repository.states(responder.id, serials) } : await this.repository.snapshot(responder.id, serials);
    if (cacheKey !== undefined) this.watermarks.learn(responder.id, revocationCount, epoch);
    const bySerial = new Map(states.map((state) => [state.serial, state]));

    const now = this.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(Math.min(thisUpdate.getTime() + this.config.ocsp.responseValiditySeconds * 1000, signer.notAfter.getTime()));
    const statuses = request.certIds.map((certId, i): OcspCertStatus => {
      if (issuers[i] !== responder || certId.serial === null) return { status: 'unknown' };
      const state = bySerial.get(certId.serial);
      if (state?.status === 'revoked') return { status: 'revoked', revokedAt: new Date(state.revokedAt!), reason: state.revocationReason };
      if (state || this.caCertificates.has(`${responder.id}:${certId.serial}`)) return { status: 'good' };
      return { status: 'unknown' };
    });
    const der = await signOcspResponse(
      {
        responderKeyHash: signer.keyHash,
        producedAt: thisUpdate,
        responses: request.certIds.map((certId, i) => ({ certId: certId.der, status: statuses[i], thisUpdate, nextUpdate })),
        nonce: request.nonce,
        certs: [signer.certificateDer],
      },
      signer.signer,
    );

    if (cacheKey === undefined || statuses.some((status) => status.status === 'unknown')) {
      this.responses.inc({ status: 'successful', cache: 'none' });
      return request.nonce ? { der } : { der, reusable: { thisUpdate, nextUpdate, etag: etagOf(der) } };
    }
    const entry: CachedAnswer = {
      answer: { der, reusable: { thisUpdate, nextUpdate, etag: etagOf(der) } },
      authorityId: responder.id,
      revocationCount,
      reuseUntil: thisUpdate.getTime() + (nextUpdate.getTime() - thisUpdate.getTime()) / 2,
    };
    this.touch(cacheKey, entry);
    if (this.cache.size > this.config.ocsp.cacheMaxEntries) this.cache.delete(this.cache.keys().next().value!);
    this.responses.inc({ status: 'successful', cache: 'miss' });
    return entry.answer;
  }

  /** The authority each CertID names, or undefined. A miss re-reads the authorities only when there are new ones. */
  private async issuersOf(certIds: OcspCertId[]): Promise<(Authority | undefined)[]> {
    if (this.indexedCount < 0) await this.reindex();
    const lookup = () => certIds.map((certId) => (certId.hash ? this.issuers.get(issuerKey(certId.hash, certId.issuerNameHash, certId.issuerKeyHash)) : undefined));
    let found = lookup();
    if (found.some((issuer, i) => issuer === undefined && certIds[i].hash !== null) && (await this.repository.authorityCount()) !== this.indexedCount) {
      await this.reindex();
      found = lookup();
    }
    return found;
  }

  private reindex(): Promise<void> {
    if (!this.indexing) {
      this.indexing = this.buildIndex().finally(() => (this.indexing = undefined));
    }
    return this.indexing;
  }

  private async buildIndex(): Promise<void> {
    const all = await this.authorities.all();
    for (const authority of all) {
      const { subject, subjectPublicKeyInfo } = certificateParts(authority.certificateDer);
      for (const hash of HASHES) {
        const { nameHash, keyHash } = certIdHashes(subject, subjectPublicKeyInfo, hash);
        this.issuers.set(issuerKey(hash, nameHash, keyHash), authority);
      }
      if (authority.parentId) this.caCertificates.set(`${authority.parentId}:${authority.serial}`, authority);
    }
    this.indexedCount = all.length;
  }
}

function issuerKey(hash: CertIdHash, nameHash: Buffer, keyHash: Buffer): string {
  return `${hash}:${nameHash.toString('hex')}:${keyHash.toString('hex')}`;
}

function etagOf(der: Buffer): string {
  return `"${createHash('sha256').update(der).digest('base64url').slice(0, 27)}"`;
}
