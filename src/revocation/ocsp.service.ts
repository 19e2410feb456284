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
import { DelegatedSigner, OcspSignerUnavailable, OcspSigners } from './ocsp-signers';
import { OcspCertificateState, OcspRepository } from './ocsp.repository';

/** An encoded OCSPResponse and, for one any client may reuse, what HTTP caches need (RFC 5019 §6.2). */
export interface OcspAnswer {
  der: Buffer;
  reusable?: { thisUpdate: Date; nextUpdate: Date; etag: string };
}

interface CachedAnswer {
  answer: OcspAnswer;
  /** What a refresh signs again: the request, the authority each CertID names, and the one that answers. */
  request: OcspRequest;
  issuers: (Authority | undefined)[];
  responder: Authority;
  authorityId: string;
  /** Our serials among the CertIDs, and the statuses signed into the answer (one per CertID). */
  serials: string[];
  statuses: OcspCertStatus[];
  /** The authority's revocation counter read before the statuses this answer was built from. */
  revocationCount: number;
  /** From then on the background refresh signs it afresh, if it was asked for since it was signed. */
  refreshAt: number;
  /** Served until then; afterwards signed afresh, so no client gets an answer with less than half its validity left. */
  reuseUntil: number;
  /** Asked for since it was signed, or since eviction last passed it over. */
  used: boolean;
}

/** A certificate's state as read from the database, and the authority's revocation counter read before it. */
interface KnownState {
  state: OcspCertificateState;
  revocationCount: number;
}

const HASHES: CertIdHash[] = ['sha1', 'sha256'];
/** Serials read at once by the background refresh (one query per batch, per authority). */
const REFRESH_READ_SERIALS = 500;
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
 * - Pre-signed answers (RFC 5019 style): answers to requests without a nonce are kept per request (its exact DER),
 *   in memory, per process, tagged with the authority's revocation counter, which every revocation raises in its own
 *   transaction. An answer is served (from `reuse`, with no database read) only while that counter, as this process
 *   knows it (RevocationWatermarks), has not moved, and until half its validity. In the background (`refresh`, after
 *   each poll of the counters) the answers asked for are signed afresh from 3/8 of their validity on, so a hot answer
 *   is never missing; and when an authority's counter moves, its answers are checked against the database in one read:
 *   unchanged ones are re-tagged, the others re-signed. A revocation committed here stops reuse at once (before the
 *   revoking request is answered); one committed by another worker or replica within OCSP_REVOCATION_POLL_MS (each
 *   process reads all counters that often). Answers containing `unknown` are not kept (random serials must not fill
 *   the cache), nor answers to requests over MAX_CACHED_REQUEST_BYTES. docs/architecture.md ("OCSP") says why memory.
 * - Statuses: what this process read of each certificate's state is kept too, tagged the same way, so a request with
 *   a nonce (signed on demand) needs no database read for a certificate whose state is known at the current counter.
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
  /** Request DER (latin1) → answer; oldest first (evicted unless used since: second chance). */
  private readonly cache = new Map<string, CachedAnswer>();
  /** `${authorityId}:${serial}` → its state as last read; oldest first. */
  private readonly known = new Map<string, KnownState>();
  private refreshing?: Promise<void>;
  /** Set at shutdown: a refresh under way stops at its next batch. */
  private closing = false;
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
    this.closing = true;
    await this.poll;
    await this.refreshing;
  }

  /**
   * Reads every authority's revocation counter (how revocations committed by other workers and replicas reach this
   * cache), then starts the refresh of the kept answers that need it.
   */
  private pollRevocationCounts(): Promise<void> {
    // The refresh is not awaited: a long one (many answers to sign again) must not hold back the next poll.
    this.poll ??= this.learnRevocationCounts()
      .then(() => void this.refresh())
      .finally(() => (this.poll = undefined));
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
    const cached = this.cache.get(body.toString('latin1'));
    if (!cached || this.clock.now().getTime() >= cached.reuseUntil) return undefined;
    if (this.watermarks.current(cached.authorityId) !== cached.revocationCount) return undefined;
    cached.used = true;
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

  private async respond(request: OcspRequest, body: Buffer): Promise<OcspAnswer> {
    const issuers = await this.issuersOf(request.certIds);
    const responder = issuers.find((issuer): issuer is Authority => issuer !== undefined);
    if (!responder) return this.failure('unauthorized');

    const cacheable = !request.nonce && this.config.ocsp.cacheMaxEntries > 0 && body.length <= MAX_CACHED_REQUEST_BYTES;
    const signer = await this.signers.forAuthority(responder);
    const ours = request.certIds.filter((certId, i) => issuers[i] === responder && certId.serial !== null).map((certId) => certId.serial!);
    const serials = [...new Set(ours)];
    const { revocationCount, states } = await this.statesOf(responder.id, serials);
    const statuses = this.statusesOf(request, issuers, responder, states);
    const signed = await this.sign(request, statuses, signer);

    if (!cacheable || statuses.some((status) => status.status === 'unknown')) {
      this.responses.inc({ status: 'successful', cache: 'none' });
      return request.nonce ? { der: signed.answer.der } : signed.answer;
    }
    this.keep(body.toString('latin1'), { ...signed, request, issuers, responder, authorityId: responder.id, serials, statuses, revocationCount, used: false });
    this.responses.inc({ status: 'successful', cache: 'miss' });
    return signed.answer;
  }

  /**
   * The states of an authority's serials and the counter they are good for: from what this process knows when every
   * one is known at the counter it knows now; else read (counter first, then states) and remembered.
   */
  private async statesOf(authorityId: string, serials: string[]): Promise<{ revocationCount: number; states: OcspCertificateState[] }> {
    const current = this.watermarks.current(authorityId);
    if (current !== undefined && this.config.ocsp.cacheMaxEntries > 0) {
      const states: OcspCertificateState[] = [];
      for (const serial of serials) {
        const known = this.known.get(`${authorityId}:${serial}`);
        if (!known || known.revocationCount !== current) break;
        states.push(known.state);
      }
      if (states.length === serials.length) return { revocationCount: current, states };
    }
    const epoch = this.watermarks.epoch(authorityId);
    const read = await this.repository.snapshot(authorityId, serials);
    this.watermarks.learn(authorityId, read.revocationCount, epoch);
    // Read before a revocation of this process committed, they may predate it: not remembered.
    if (this.watermarks.epoch(authorityId) === epoch && this.config.ocsp.cacheMaxEntries > 0) {
      for (const state of read.states) {
        const key = `${authorityId}:${state.serial}`;
        this.known.delete(key);
        this.known.set(key, { state, revocationCount: read.revocationCount });
      }
      // Twice the answers: an answer may name several certificates, and nonce requests ask for certificates too.
      while (this.known.size > 2 * this.config.ocsp.cacheMaxEntries) this.known.delete(this.known.keys().next().value!);
    }
    return read;
  }

  private statusesOf(request: OcspRequest, issuers: (Authority | undefined)[], responder: Authority, states: OcspCertificateState[]): OcspCertStatus[] {
    const bySerial = new Map(states.map((state) => [state.serial, state]));
    return request.certIds.map((certId, i): OcspCertStatus => {
      if (issuers[i] !== responder || certId.serial === null) return { status: 'unknown' };
      const state = bySerial.get(certId.serial);
      if (state?.status === 'revoked') return { status: 'revoked', revokedAt: new Date(state.revokedAt!), reason: state.revocationReason };
      if (state || this.caCertificates.has(`${responder.id}:${certId.serial}`)) return { status: 'good' };
      return { status: 'unknown' };
    });
  }

  /** Signs the answer now, valid OCSP_RESPONSE_VALIDITY_SECONDS (never past the signer), and when to refresh and stop reusing it. */
  private async sign(request: OcspRequest, statuses: OcspCertStatus[], signer: DelegatedSigner): Promise<{ answer: OcspAnswer; refreshAt: number; reuseUntil: number }> {
    const thisUpdate = new Date(Math.floor(this.clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(Math.min(thisUpdate.getTime() + this.config.ocsp.responseValiditySeconds * 1000, signer.notAfter.getTime()));
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
    const validity = nextUpdate.getTime() - thisUpdate.getTime();
    return {
      answer: { der, reusable: { thisUpdate, nextUpdate, etag: etagOf(der) } },
      refreshAt: thisUpdate.getTime() + (validity * 3) / 8,
      reuseUntil: thisUpdate.getTime() + validity / 2,
    };
  }

  /** Keeps an answer; beyond OCSP_CACHE_MAX_ENTRIES the oldest not used since it was passed over goes. */
  private keep(key: string, entry: CachedAnswer): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    // Each entry passed over loses its mark, so this ends within one round of the cache.
    while (this.cache.size > this.config.ocsp.cacheMaxEntries) {
      const [oldestKey, oldest] = this.cache.entries().next().value!;
      this.cache.delete(oldestKey);
      if (!oldest.used) break;
      oldest.used = false;
      this.cache.set(oldestKey, oldest);
    }
  }

  /**
   * The background refresh (after each poll of the counters): kept answers whose authority's counter moved are
   * checked against the database, one read per authority (re-tagged when their statuses are unchanged, else
   * re-signed); answers past their refresh time are re-signed when they were asked for since they were signed, and
   * dropped otherwise. One refresh at a time.
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshAnswers()
      .catch((err: unknown) => this.logger.warn(`Refreshing OCSP answers failed: ${(err as Error).message}`))
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshAnswers(): Promise<void> {
    const now = this.clock.now().getTime();
    const due = new Map<string, [string, CachedAnswer][]>();
    for (const [key, entry] of this.cache) {
      const moved = this.watermarks.current(entry.authorityId) !== entry.revocationCount;
      if (!moved && now < entry.refreshAt) continue;
      if (!moved && !entry.used) {
        // Not asked for since it was signed: left to lapse (it is served until reuseUntil).
        if (now >= entry.reuseUntil) this.cache.delete(key);
        continue;
      }
      const list = due.get(entry.authorityId) ?? [];
      list.push([key, entry]);
      due.set(entry.authorityId, list);
    }
    for (const entries of due.values()) {
      // Batches of about REFRESH_READ_SERIALS serials (a kept request names at most a few dozen).
      let batch: [string, CachedAnswer][] = [];
      let serials = 0;
      for (const item of entries) {
        if (this.closing) return;
        batch.push(item);
        serials += item[1].serials.length;
        if (serials >= REFRESH_READ_SERIALS) {
          await this.refreshSome(batch, now);
          batch = [];
          serials = 0;
        }
      }
      if (batch.length && !this.closing) await this.refreshSome(batch, now);
    }
  }

  private async refreshSome(entries: [string, CachedAnswer][], now: number): Promise<void> {
    const { authorityId, responder } = entries[0][1];
    // Known states are not used here: the point is to read what changed.
    const epoch = this.watermarks.epoch(authorityId);
    const read = await this.repository.snapshot(authorityId, [...new Set(entries.flatMap(([, entry]) => entry.serials))]);
    this.watermarks.learn(authorityId, read.revocationCount, epoch);
    if (this.watermarks.epoch(authorityId) !== epoch) return; // a revocation here meanwhile: the next refresh reads again
    for (const state of read.states) {
      const known = `${authorityId}:${state.serial}`;
      if (this.known.has(known)) this.known.set(known, { state, revocationCount: read.revocationCount });
    }
    const signer = await this.signers.forAuthority(responder);
    for (const [key, entry] of entries) {
      if (this.cache.get(key) !== entry) continue; // replaced by a request meanwhile
      const statuses = this.statusesOf(entry.request, entry.issuers, entry.responder, read.states);
      if (statuses.some((status) => status.status === 'unknown')) {
        this.cache.delete(key);
        continue;
      }
      if (now < entry.refreshAt && sameStatuses(statuses, entry.statuses)) {
        entry.revocationCount = read.revocationCount;
        continue;
      }
      const signed = await this.sign(entry.request, statuses, signer);
      if (this.cache.get(key) !== entry) continue;
      this.cache.set(key, { ...entry, ...signed, statuses, revocationCount: read.revocationCount, used: false });
      this.responses.inc({ status: 'successful', cache: 'refresh' });
    }
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

function sameStatuses(a: OcspCertStatus[], b: OcspCertStatus[]): boolean {
  return a.every((status, i) => {
    const other = b[i];
    if (status.status !== other.status) return false;
    if (status.status !== 'revoked' || other.status !== 'revoked') return true;
    return status.revokedAt.getTime() === other.revokedAt.getTime() && status.reason === other.reason;
  });
}

function etagOf(der: Buffer): string {
  return `"${createHash('sha256').update(der).digest('base64url').slice(0, 27)}"`;
}
