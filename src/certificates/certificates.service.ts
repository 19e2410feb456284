import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { allocate, Allocation, DEFAULT_TARGET_ID, IOT_TARGET_ID_PATTERN } from '../common/allocation';
import { RequestContext } from '../common/actor';
import { AuthoritiesService } from '../authorities/authorities.service';
import { isoSeconds } from '../common/time';
import { PublicUrls } from '../authorities/public-urls';
import { Clock } from '../common/clock';
import { decodeCursor, encodeCursor } from '../common/cursor';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { MetricsService } from '../metrics/metrics.service';
import { fingerprint, signCertificate } from '../pki/certificate';
import { pemEncode } from '../pki/der';
import { RevocationReason } from '../pki/crl';
import { ParsedCsr } from '../pki/csr';
import { CsrParser } from './csr-parser';
import { describeCertificate, validityDaysFor } from '../pki/issuance';
import { formatName, SubjectFields } from '../pki/names';
import { findProfile, namesFor } from '../pki/profiles';
import { randomSerial } from '../pki/serial';
import { CertificateRecord, CertificateStatus, CertificateSummary, HardwareAttestation, IotThingOptions, isImported } from './certificate';
import { CertificateEvents } from './certificate-events';
import { CertificateRepository, IssuanceReads } from './certificate.repository';
import { RevocationListPublisher } from './revocation-list-publisher.port';

export interface IssueInput {
  authorityId: string;
  csr: string;
  profile: string;
  validityDays?: number;
  thingName?: string;
  metadata?: Record<string, string>;
}

/** What the service itself adds when it issues on someone's behalf (claims), never taken from an API body. */
export interface IssueOptions {
  /** Allows the internal profiles (claim). */
  internalProfile?: boolean;
  /** The request, already parsed and checked by the caller (a CSR it read, or a key it generated). */
  parsedCsr?: ParsedCsr;
  /** The subject, for profiles whose subject the service gives. */
  subject?: SubjectFields;
  /** An end before the profile's validity would give (a claim certificate ends with its claim). */
  notAfter?: Date;
  /** The factory claim that provisioned the certificate. */
  claimId?: string;
  /** The certificate this one renews. */
  replacesId?: string;
  iotThing?: IotThingOptions;
  /** The IoT target to register it in (docs/iot-targets.md); the default target when absent. */
  iotTargetId?: string;
  /** What a TPM proved about the key (attested enrollment); stored with the certificate. */
  hardwareAttestation?: HardwareAttestation;
  /** Added to the certificate.issued audit event (who, in a factory, asked for it). */
  auditDetails?: Record<string, unknown>;
  /**
   * AWS IoT creates the certificate from our answer (CreateCertificateFromCsr through the certificate provider): no
   * RegisterCertificate is queued, and iotStatus `aws-created` makes a revocation reach AWS IoT whatever the CA's
   * registration (docs/aws-fleet-provisioning.md).
   */
  createdByAws?: boolean;
  /** Runs inside the issuance transaction before the certificate is stored; throwing stores nothing. */
  inTransaction?: (record: CertificateRecord) => Promise<void>;
  /**
   * The issuance's reads, started by the caller beside reads of its own (`CertificatesService.readsFor`). Used only
   * when they were made for this authority, key and target; read again otherwise.
   */
  reads?: PrefetchedReads;
}

/** `CertificatesService.readsFor`: the reads, and what they were read for. */
export interface PrefetchedReads {
  readonly madeFor: string;
  readonly reads: IssuanceReads;
}

export interface SearchInput {
  status?: CertificateStatus;
  authorityId?: string;
  thingName?: string;
  serial?: string;
  fingerprint?: string;
  expiringBefore?: string;
  cursor?: string;
  limit: number;
}

const DAY_MS = 86_400_000;

/** The certificates issued in the current transaction, written together before it commits (insertAtCommit). */
const PENDING_CERTIFICATES = Symbol('pending certificate inserts');

@Injectable()
export class CertificatesService implements OnModuleInit {
  private readonly logger = new Logger('Certificates');

  constructor(
    private readonly repository: CertificateRepository,
    private readonly authorities: AuthoritiesService,
    private readonly crls: RevocationListPublisher,
    private readonly events: CertificateEvents,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @Inject(PublicUrls) private readonly urls: PublicUrls,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly csrs: CsrParser,
  ) {}

  onModuleInit(): void {
    // Read at scrape time: certificates expiring within 30 days, per issuing authority (0 when none).
    const gauge = this.metrics.certificatesExpiring30d;
    this.metrics.collectWith(gauge, async () => {
      const now = this.clock.now();
      const counts = await this.repository.expiringCounts(now.toISOString(), new Date(now.getTime() + 30 * DAY_MS).toISOString());
      gauge.reset();
      for (const authority of await this.authorities.all()) gauge.set({ authority_id: authority.id }, counts.find((c) => c.authorityId === authority.id)?.count ?? 0);
    });
  }

  /**
   * Issues a certificate from a CSR. The profile decides the subject and every extension; from the CSR
   * only the public key (after proof of possession and key policy) and, where the profile allows, SANs
   * are used. Signing happens before the transaction, so a failed signature leaves no row behind.
   */
  async issue(ctx: RequestContext, input: IssueInput, options: IssueOptions = {}): Promise<CertificateRecord> {
    const profile = findProfile(input.profile, { internal: options.internalProfile });
    const validityDays = validityDaysFor(profile, input.validityDays);
    const csr = options.parsedCsr ?? (await this.csrs.parse(input.csr));
    const names = namesFor(profile, csr, input.thingName, options.subject);
    const publicKeySha256 = csr.publicKey.sha256;
    const madeFor = readsKey(input.authorityId, publicKeySha256, options);
    const reads = options.reads?.madeFor === madeFor ? options.reads.reads : (await this.readsFor(input.authorityId, publicKeySha256, options)).reads;
    const issuer = await this.authorities.leafIssuer(input.authorityId, profile.issuedBy, reads);

    // A CA's own key in an end-entity certificate, or a key already known compromised, is never certified.
    if (reads.authorityKey) throw Errors.keyNotAllowed('the CSR key is a certificate authority key');
    if (reads.compromisedKey) throw Errors.keyNotAllowed('the CSR key belongs to a certificate revoked for keyCompromise');

    const now = this.clock.now();
    const { tbs, validityClamped } = describeCertificate({
      kind: 'end-entity',
      issuer,
      urls: this.urls.forIssuer(issuer.authority.id),
      profile,
      names,
      validityDays,
      endsBy: options.notAfter,
      subjectPublicKeyInfo: csr.publicKeySpki,
      now,
      backdateSeconds: this.config.issuance.backdateSeconds,
    });

    // Read outside the transaction, which on SQLite every writer takes in turn.
    const followUp = await this.events.prepareIssue(issuer.authority.id, options.iotTargetId, { createdByAws: options.createdByAws === true, registration: reads.registration });
    const serial = randomSerial();
    const der = await signCertificate({ serial, ...tbs }, issuer.signer);

    const record: CertificateRecord = {
      id: randomUUID(),
      authorityId: issuer.authority.id,
      serial: serial.toString('hex'),
      fingerprint: fingerprint(der),
      profile: profile.name,
      subject: formatName(names.subject),
      thingName: names.thingName ?? null,
      status: 'active',
      notBefore: isoSeconds(tbs.notBefore),
      notAfter: isoSeconds(tbs.notAfter),
      issuedAt: now.toISOString(),
      publicKeySha256,
      keyDescription: csr.publicKey.description,
      certificateDer: der,
      metadata: input.metadata ?? null,
      validityClamped,
      revokedAt: null,
      revocationReason: null,
      iotStatus: followUp.iotStatus,
      iotLastError: null,
      iotThing: options.iotThing ?? null,
      iotTargetId: options.iotTargetId && options.iotTargetId !== 'default' ? options.iotTargetId : null,
      claimId: options.claimId ?? null,
      replacesId: options.replacesId ?? null,
      replacedById: null,
      supersededAt: null,
      hardwareAttestation: options.hardwareAttestation ?? null,
    };
    // Grouped with the issuances and revocations that arrive meanwhile: one commit, and the answer only after it.
    await this.transactions.runGrouped(async () => {
      await options.inTransaction?.(record);
      this.insertAtCommit(record);
      // Scheduled in this transaction: AWS IoT registration (API mode) exists exactly when the certificate does.
      await followUp.schedule(record);
      await this.audit.record(ctx, {
        action: 'certificate.issued',
        target: { type: 'certificate', id: record.id },
        details: {
          authorityId: record.authorityId,
          serial: record.serial,
          fingerprint: record.fingerprint,
          profile: record.profile,
          subject: record.subject,
          thingName: record.thingName,
          notAfter: record.notAfter,
          validityClamped,
          ...(options.hardwareAttestation ? { hardwareAttestation: options.hardwareAttestation } : {}),
          ...options.auditDetails,
        },
      });
    });
    this.metrics.certificatesIssued.inc({ profile: profile.name });
    return record;
  }

  /**
   * Stores the certificate with the others issued in the same transaction (a group commit's): one multi-row INSERT just
   * before the commit, instead of a round trip per certificate inside the transaction that every writer waits for. No
   * table references certificates by foreign key and nothing later in an issuing transaction reads the row, so it need
   * not exist before then. A unique violation there rolls the group back, and each issuance runs again alone, failing
   * only if it fails alone (docs/architecture.md, "Group commit").
   */
  private insertAtCommit(record: CertificateRecord): void {
    const pending = this.transactions.local(PENDING_CERTIFICATES, () => {
      const records: CertificateRecord[] = [];
      this.transactions.beforeCommit(() => this.repository.insertMany(records.splice(0)));
      return records;
    });
    pending.push(record);
  }

  /**
   * What `issue` reads before it signs, in one query: the authority, whether the CSR key is an authority's key or a
   * compromised one, and the AWS IoT registration (docs/architecture.md, "The path of one issuance"). A caller with
   * reads of its own starts this beside them and hands the result to `issue` (IssueOptions.reads).
   */
  async readsFor(authorityId: string, publicKeySha256: string, options: Pick<IssueOptions, 'iotTargetId' | 'createdByAws'>): Promise<PrefetchedReads> {
    // A certificate AWS creates itself needs no registration; a target id no target can have is left to prepareIssue
    // to refuse, before it reaches the database.
    const targetId = options.iotTargetId ?? DEFAULT_TARGET_ID;
    const readRegistration = options.createdByAws !== true && IOT_TARGET_ID_PATTERN.test(targetId);
    const reads = await this.repository.readForIssuance(authorityId, publicKeySha256, readRegistration ? targetId : undefined);
    return { madeFor: readsKey(authorityId, publicKeySha256, options), reads };
  }

  /**
   * The IoT target of a certificate issued without a claim (POST /v1/certificates, an EST authority label):
   * `allocation` (an EST label's) when given, else its profile's (IOT_PROFILE_ALLOCATION), else the default target
   * (docs/iot-targets.md, "Allocation"). Attribute allocation reads the request's metadata; weighted allocation hashes
   * the thing name (else the CSR), so a retry lands in the same target.
   */
  iotTargetFor(input: IssueInput, allocation?: Allocation | null): string {
    const chosen = allocation ?? this.config.iot?.profileAllocation?.[input.profile] ?? null;
    return allocate(chosen, input.thingName ?? input.csr, input.metadata ?? {});
  }

  async get(id: string): Promise<CertificateRecord> {
    const record = await this.repository.findById(id);
    if (!record) throw Errors.certificateNotFound(`no certificate with id ${id}`);
    return record;
  }

  async search(input: SearchInput): Promise<{ items: CertificateSummary[]; nextCursor: string | null }> {
    const before = input.cursor ? decodeCursor<{ issuedAt: string; id: string }>(input.cursor, { issuedAt: 'string', id: 'string' }) : undefined;
    // Stored times are fixed-width UTC ISO strings; a filter given with an offset or without milliseconds is normalised first.
    const expiringBefore = input.expiringBefore === undefined ? undefined : new Date(input.expiringBefore).toISOString();
    const rows = await this.repository.search({ ...input, expiringBefore, before, now: this.clock.now().toISOString(), limit: input.limit + 1 });
    const items = rows.slice(0, input.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > input.limit ? encodeCursor({ issuedAt: last.issuedAt, id: last.id }) : null };
  }

  /** Revokes once (a second call is a 409), then republishes the CA's CRL. */
  async revoke(ctx: RequestContext, id: string, reason: RevocationReason): Promise<CertificateRecord> {
    const revoked = await this.transactions.runGrouped(async () => {
      const revoked = await this.revokeInTransaction(ctx, id, reason);
      if (!revoked) throw Errors.certificateAlreadyRevoked(`certificate ${id} is already revoked`);
      return revoked;
    });
    // An imported (pre-provisioned) certificate is on no CRL of ours: we did not issue it (docs/secure-elements.md).
    if (!isImported(revoked)) await this.refreshCrl(revoked.authorityId);
    return revoked;
  }

  /**
   * Revokes one certificate inside the caller's transaction: the state, the CRL's staleness count, the AWS IoT
   * follow-up and the audit event commit together. Null when it was already revoked. The caller refreshes the CRL.
   *
   * A claim certificate is refused (USE_CLAIM_REVOCATION) unless `claimRevocation` says the caller is revoking its
   * claim: revoked alone it would stop every exchange while the claim still reads `active`, with no cascade.
   */
  async revokeInTransaction(
    ctx: RequestContext,
    id: string,
    reason: RevocationReason,
    auditDetails: Record<string, unknown> = {},
    options: { claimRevocation?: boolean } = {},
  ): Promise<CertificateRecord | null> {
    const record = await this.get(id);
    if (record.profile === 'claim' && !options.claimRevocation) {
      const claimId = await this.repository.claimOfClaimCertificate(id);
      throw Errors.useClaimRevocation(
        `certificate ${id} is the claim certificate of claim ${claimId ?? '(unknown)'}: revoke the claim instead (POST /v1/claims/${claimId ?? '{id}'}/revoke), ` +
          'which stops the claim and revokes its certificate together',
        { claimId },
      );
    }
    const revokedAt = isoSeconds(this.clock.now());
    if (!(await this.repository.markRevoked(id, revokedAt, reason))) return null;
    if (!isImported(record)) await this.authorities.countRevocation(record.authorityId);
    await this.events.revoked(record);
    await this.audit.record(ctx, {
      action: 'certificate.revoked',
      target: { type: 'certificate', id },
      details: { authorityId: record.authorityId, serial: record.serial, fingerprint: record.fingerprint, reason, ...auditDetails },
    });
    this.transactions.afterCommit(() => this.metrics.certificatesRevoked.inc({ reason }));
    return { ...record, status: 'revoked', revokedAt, revocationReason: reason };
  }

  /**
   * Regenerates an authority's CRL after revocations committed. If that fails the next CRL request sees the CRL
   * stale (revocation count) and regenerates it then.
   */
  async refreshCrl(authorityId: string): Promise<void> {
    await this.crls.republish(authorityId).catch((err: unknown) => {
      this.logger.error(`CRL refresh after revocation failed for authority ${authorityId}: ${(err as Error).message}`);
    });
  }

  /** The certificate's chain: its issuing authority's, or for an imported certificate the chain its manifest gave. */
  async chainPemOf(record: CertificateRecord): Promise<string> {
    if (isImported(record)) return (record.importedChainDer ?? []).map((der) => pemEncode('CERTIFICATE', der)).join('');
    return this.chainPem(record.authorityId);
  }

  async chainDerOf(record: CertificateRecord): Promise<Buffer[]> {
    if (isImported(record)) return record.importedChainDer ?? [];
    return this.chainDer(record.authorityId);
  }

  chainPem(authorityId: string): Promise<string> {
    return this.authorities.chainPemById(authorityId);
  }

  /** The issuing authority's certificate followed by each parent up to the root, DER. */
  chainDer(authorityId: string): Promise<Buffer[]> {
    return this.authorities.chainDerById(authorityId);
  }
}

/** What a PrefetchedReads was read for: the authority, the key and the registration asked for. */
function readsKey(authorityId: string, publicKeySha256: string, options: Pick<IssueOptions, 'iotTargetId' | 'createdByAws'>): string {
  return JSON.stringify([authorityId, publicKeySha256, options.iotTargetId ?? DEFAULT_TARGET_ID, options.createdByAws === true]);
}
