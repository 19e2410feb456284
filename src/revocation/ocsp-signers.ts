import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { SYSTEM_CONTEXT } from '../common/actor';
import { AuditService } from '../audit/audit.service';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Authority } from '../authorities/authority';
import { Clock } from '../common/clock';
import { isoSeconds } from '../common/time';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { KeyManagers, Signer } from '../keys/key-manager';
import { MetricsService } from '../metrics/metrics.service';
import { certificateParts, fingerprint, signCertificate } from '../pki/certificate';
import { keyIdentifier } from '../pki/extensions';
import { describeCertificate, validityPeriod } from '../pki/issuance';
import { randomSerial } from '../pki/serial';
import { OcspRepository, StoredOcspSigner } from './ocsp.repository';

/** A delegated OCSP responder of one authority (RFC 6960 §4.2.2.2), ready to sign. */
export interface DelegatedSigner {
  id: string;
  authorityId: string;
  certificateDer: Buffer;
  /** SHA-1 of the signer's public key: the responderID byKey of what it signs (§4.2.2.3). */
  keyHash: Buffer;
  signer: Signer;
  notBefore: Date;
  notAfter: Date;
}

/** Why no signer can answer for an authority right now, as the OCSPResponseStatus to send. */
export class OcspSignerUnavailable extends Error {
  constructor(
    readonly status: 'unauthorized' | 'tryLater',
    message: string,
  ) {
    super(message);
    this.name = 'OcspSignerUnavailable';
  }
}

/** After a failed attempt to make a successor, wait this long (wall clock) before the next one. */
const RETRY_AFTER_FAILURE_MS = 30_000;

/**
 * Delegated OCSP signers, one current per authority: a local EC P-256 key and a short-lived certificate signed by
 * the CA key with id-kp-OCSPSigning, id-pkix-ocsp-nocheck and keyUsage digitalSignature. OCSP responses are signed
 * by it, so a KMS-backed CA pays one KMS Sign per signer (every OCSP_SIGNER_VALIDITY_HOURS / 2), never per request.
 *
 * A signer is replaced once less than half of its validity is left: on use (in the background, while the old one,
 * still valid, keeps answering) and by a periodic sweep, as CRLs are. Each process caches its signer in memory and
 * first looks in the database for one another replica made; two replicas that rotate at the same moment each make
 * one. That is harmless: both certificates are valid delegations and clients verify whichever signed the response.
 */
@Injectable()
export class OcspSigners implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('OCSP');
  private readonly current = new Map<string, DelegatedSigner>();
  private readonly inFlight = new Map<string, Promise<DelegatedSigner>>();
  private readonly failedAt = new Map<string, number>();
  private readonly created: Counter;
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly repository: OcspRepository,
    private readonly authorities: AuthoritiesService,
    private readonly keys: KeyManagers,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.created = metrics.ocspSignersCreated;
  }

  private get validityMs(): number {
    return this.config.ocsp.signerValidityHours * 3_600_000;
  }

  /**
   * The signer for the authority's OCSP responses. A due rotation runs in the background while the current signer
   * is still valid; without a valid one the caller waits for a new one.
   */
  async forAuthority(authority: Authority): Promise<DelegatedSigner> {
    const now = this.clock.now();
    const signer = this.current.get(authority.id);
    if (signer && signer.notAfter > now) {
      if (this.needsReplacing(signer.notAfter, authority, now) && !this.recentlyFailed(authority.id)) {
        this.refresh(authority).catch((err: unknown) => this.logger.warn(`OCSP signer rotation for authority ${authority.id} failed: ${(err as Error).message}`));
      }
      return signer;
    }
    return this.refresh(authority);
  }

  onApplicationBootstrap(): void {
    const everyMs = Math.min(this.validityMs / 8, 10 * 60 * 1000);
    this.sweepTimer = setInterval(() => void this.sweep(), everyMs);
    this.sweepTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sweepTimer);
  }

  /** Rotates this process's signers that are due, then removes signers (and their keys) long expired. */
  async sweep(): Promise<void> {
    for (const [authorityId, signer] of [...this.current]) {
      try {
        const authority = await this.authorities.get(authorityId);
        if (this.needsReplacing(signer.notAfter, authority, this.clock.now())) await this.refresh(authority);
      } catch (err) {
        this.logger.error(`OCSP signer sweep failed for authority ${authorityId}: ${(err as Error).message}`);
      }
    }
    try {
      await this.prune();
    } catch (err) {
      this.logger.error(`OCSP signer clean-up failed: ${(err as Error).message}`);
    }
  }

  /**
   * Less than half of the validity left, and a successor would actually end later (near the authority's own end,
   * signers are capped by it, and making more would not help).
   */
  private needsReplacing(notAfter: Date, authority: Authority, now: Date): boolean {
    const remaining = notAfter.getTime() - now.getTime();
    if (remaining >= this.validityMs / 2) return false;
    const successor = validityPeriod({
      now,
      backdateSeconds: this.config.issuance.backdateSeconds,
      lifetimeMs: this.validityMs,
      issuer: { notBefore: new Date(authority.notBefore), notAfter: new Date(authority.notAfter) },
    });
    return successor.notAfter > notAfter;
  }

  private recentlyFailed(authorityId: string): boolean {
    const at = this.failedAt.get(authorityId);
    return at !== undefined && Date.now() - at < RETRY_AFTER_FAILURE_MS;
  }

  /** One attempt at a time per authority in this process. */
  private refresh(authority: Authority): Promise<DelegatedSigner> {
    let pending = this.inFlight.get(authority.id);
    if (!pending) {
      pending = this.obtain(authority)
        .then(
          (signer) => {
            this.current.set(authority.id, signer);
            this.failedAt.delete(authority.id);
            return signer;
          },
          (err: unknown) => {
            this.failedAt.set(authority.id, Date.now());
            throw err;
          },
        )
        .finally(() => this.inFlight.delete(authority.id));
      this.inFlight.set(authority.id, pending);
    }
    return pending;
  }

  /** The newest stored signer when it is still good (another replica, or this one before a restart, made it); else a new one. */
  private async obtain(authority: Authority): Promise<DelegatedSigner> {
    const now = this.clock.now();
    const stored = await this.repository.latestSigner(authority.id);
    if (stored && new Date(stored.notAfter) > now && !this.needsReplacing(new Date(stored.notAfter), authority, now)) return this.load(stored);
    return this.create(authority, now);
  }

  private async load(stored: StoredOcspSigner): Promise<DelegatedSigner> {
    const signer = await this.keys.get('local').signer(stored.keyRef, stored.keySpec);
    return {
      id: stored.id,
      authorityId: stored.authorityId,
      certificateDer: stored.certificateDer,
      keyHash: keyIdentifier(certificateParts(stored.certificateDer).subjectPublicKeyInfo),
      signer,
      notBefore: new Date(stored.notBefore),
      notAfter: new Date(stored.notAfter),
    };
  }

  private async create(authority: Authority, now: Date): Promise<DelegatedSigner> {
    const caNotAfter = new Date(authority.notAfter);
    // A delegation cannot outlive the CA certificate; for an expired CA nobody can answer authoritatively (§2.3).
    if (caNotAfter.getTime() <= now.getTime() + 60_000) {
      throw new OcspSignerUnavailable('unauthorized', `authority ${authority.id} has expired: no OCSP signer can be certified`);
    }
    const local = this.keys.get('local');
    const key = await local.createKey({ spec: 'EC_P256', authorityId: authority.id, label: `fleet-pki OCSP signer for authority ${authority.id}` });
    try {
      // The CA key signs here, and only here (one KMS Sign per signer for a KMS-backed CA).
      const issuer = await this.authorities.signingView(authority);
      const { tbs } = describeCertificate({
        kind: 'ocsp-signer',
        issuer,
        authorityId: authority.id,
        validityHours: this.config.ocsp.signerValidityHours,
        subjectPublicKeyInfo: key.publicKeySpki,
        now,
        backdateSeconds: this.config.issuance.backdateSeconds,
      });
      const serial = randomSerial();
      const der = await signCertificate({ serial, ...tbs }, issuer.signer);
      const stored: StoredOcspSigner = {
        id: randomUUID(),
        authorityId: authority.id,
        keyRef: key.keyRef,
        keySpec: key.spec,
        certificateDer: der,
        notBefore: isoSeconds(tbs.notBefore),
        notAfter: isoSeconds(tbs.notAfter),
        createdAt: now.toISOString(),
      };
      await this.transactions.run(async () => {
        await this.repository.insertSigner(stored);
        await this.audit.record(SYSTEM_CONTEXT, {
          action: 'ocsp-signer.created',
          target: { type: 'authority', id: authority.id },
          details: { signerId: stored.id, serial: serial.toString('hex'), fingerprint: fingerprint(der), notBefore: stored.notBefore, notAfter: stored.notAfter },
        });
      });
      this.created.inc();
      return await this.load(stored);
    } catch (err) {
      await local.discardKey(key.keyRef).catch((cleanupError: unknown) => {
        this.logger.warn(`could not discard the key of an unstored OCSP signer: ${(cleanupError as Error).message}`);
      });
      throw err;
    }
  }

  /**
   * Signers that expired a whole validity period ago: every response they signed has expired too (a response never
   * outlives its signer), so their rows and keys go.
   */
  private async prune(): Promise<void> {
    const before = new Date(this.clock.now().getTime() - this.validityMs).toISOString();
    for (const signer of await this.repository.expiredSigners(before)) {
      await this.repository.deleteSigner(signer.id);
      await this.keys.get('local').discardKey(signer.keyRef);
    }
  }
}
