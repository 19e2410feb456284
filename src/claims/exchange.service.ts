import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { CertificateRecord, HardwareAttestation } from '../certificates/certificate';
import { CertificatesService } from '../certificates/certificates.service';
import { CsrParser } from '../certificates/csr-parser';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { Transactions } from '../database/transactions';
import { isUniqueViolation } from '../database/errors';
import { MetricsService } from '../metrics/metrics.service';
import { Claim, ExchangeIdempotencyKey, ProvisionedDevice } from './claim';
import { ClaimRepository } from './claim.repository';
import { isWellFormedSerial, thingNameFor } from './claims.service';
import { storedSerialPattern } from './serial-pattern';
import { StationIdentity } from './station-authenticator';
import { allocate, Allocation } from '../common/allocation';

export interface ExchangeInput {
  deviceSerial: string;
  csr: string;
  /** Thing attributes for this device, added to the claim's. */
  attributes?: Record<string, string>;
  /** An allocation over the claim's (an EST label's, docs/iot-targets.md); never taken from an API body. */
  allocation?: Allocation | null;
  /**
   * What a TPM proved about the CSR's key, set only by the attested enrollment (src/tpm/) once the device answered
   * its challenge; never taken from an API body. A claim with attestation `tpm` refuses an exchange without it.
   */
  attestation?: HardwareAttestation;
}

export interface ExchangeResult {
  certificate: CertificateRecord;
  deviceSerial: string;
  /** True when this answers a retry with the certificate issued before. */
  replayed: boolean;
}

/** Raised inside the issuance transaction when another request provisioned the serial first; never leaves this file. */
class ProvisionedMeanwhile extends Error {}

const PENDING_EXCHANGE_WRITES = Symbol('pending exchange writes');

/** What the exchanges of one transaction write at its end (ExchangeService.pendingWrites). */
class PendingExchangeWrites {
  readonly devices: ProvisionedDevice[] = [];
  /** Slots to take per claim, with the claim's latest exchange time in the group. */
  readonly slots = new Map<string, { claim: Claim; count: number; at: string }>();
  readonly keys: ExchangeIdempotencyKey[] = [];

  add(claim: Claim, device: ProvisionedDevice): void {
    this.devices.push(device);
    const slot = this.slots.get(claim.id) ?? { claim, count: 0, at: '' };
    slot.count += 1;
    if (device.provisionedAt > slot.at) slot.at = device.provisionedAt;
    this.slots.set(claim.id, slot);
  }
}

/**
 * The factory exchange: an authenticated station's device serial and CSR become the device's certificate,
 * under every rule of its claim. Every outcome after authentication is audited with the claim and the station.
 */
@Injectable()
export class ExchangeService {
  constructor(
    private readonly claims: ClaimRepository,
    private readonly certificates: CertificatesService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly csrs: CsrParser,
  ) {}

  async exchange(identity: StationIdentity, input: ExchangeInput, idempotencyKey: string | undefined): Promise<ExchangeResult> {
    try {
      const result = await this.run(identity, input, idempotencyKey);
      this.metrics.exchanges.inc({ outcome: result.replayed ? 'replayed' : 'issued' });
      return result;
    } catch (err) {
      if (err instanceof DomainError && err.status < 500) {
        this.metrics.exchanges.inc({ outcome: err.code });
        await this.audit.record(identity.ctx, {
          action: 'provisioning.refused',
          target: { type: 'claim', id: identity.claim.id },
          details: { ...this.who(identity), deviceSerial: input.deviceSerial, code: err.code, reason: err.message.slice(0, 300) },
        });
      }
      throw err;
    }
  }

  private async run(identity: StationIdentity, input: ExchangeInput, idempotencyKey: string | undefined, lostRace = false): Promise<ExchangeResult> {
    const claim = identity.claim;
    this.checkClaimUsable(identity);
    this.checkAttestation(claim, input.attestation);
    const serial = input.deviceSerial;
    if (!isWellFormedSerial(serial)) throw Errors.validation('deviceSerial must be 1-64 letters, digits or . _ : / - and start with a letter or digit');
    if (claim.serialPattern !== null && !storedSerialPattern(claim.serialPattern, claim.id).matchesWhole(serial)) {
      throw Errors.serialNotAllowed(`serial ${serial} does not match the claim's serial pattern`);
    }
    if (claim.allowlistSize !== null && !(await this.claims.isAllowed(claim.id, serial))) {
      throw Errors.serialNotAllowed(`serial ${serial} is not on the claim's allow-list`);
    }

    const requestSha256 = createHash('sha256').update(JSON.stringify([serial, input.csr, input.attributes ?? null])).digest('hex');
    const csr = await this.csrs.parse(input.csr);
    const publicKeySha256 = csr.publicKey.sha256;
    const attributes = { ...claim.iot?.attributes, ...input.attributes };
    // Device attributes sent with the exchange, over the claim's (factory) attributes, choose the target; an EST
    // label's allocation takes precedence over the claim's.
    const chooseTarget = () => allocate(input.allocation ?? claim.allocation, serial, attributes);
    const createdByAws = identity.method === 'aws-iot';
    // The issuance's own reads go beside this request's (independent: one round trip of waiting instead of two on
    // PostgreSQL); an allocation that refuses the device is refused below, in its turn, so no prefetch then.
    const target = attempt(chooseTarget);
    const [{ earlier, existing }, reads] = await Promise.all([
      // On SQLite (one connection) another request's uncommitted rows must stay out of view.
      this.transactions.readCommitted(() => this.claims.findEarlierExchange(claim.id, serial, idempotencyKey)),
      target.ok ? this.certificates.readsFor(claim.deviceAuthorityId, publicKeySha256, { iotTargetId: target.value, createdByAws }) : undefined,
    ]);
    if (earlier) {
      if (earlier.requestSha256 !== requestSha256) throw Errors.idempotencyKeyReused('this Idempotency-Key was used for a different request');
      return { certificate: await this.certificates.get(earlier.certificateId), deviceSerial: serial, replayed: true };
    }
    if (existing && existing.publicKeySha256 === publicKeySha256) {
      // A retry (the station lost our answer): the same device and key get the same certificate.
      return { certificate: await this.certificates.get(existing.certificateId), deviceSerial: serial, replayed: true };
    }
    if (existing && !claim.allowReprovisioning) {
      throw Errors.deviceAlreadyProvisioned(`serial ${serial} was provisioned already with another key; this claim does not allow re-provisioning`);
    }
    // Checked again, atomically, in the transaction; this only spares a signature when the claim is already full.
    if (!existing && claim.used >= claim.maxDevices) throw Errors.claimQuotaExhausted(`the claim has provisioned all ${claim.maxDevices} devices it allows`);

    const thingName = thingNameFor(claim, serial);
    // The CSR may name the device, but not some other device.
    const csrName = csr.subject.commonName;
    if (csrName !== undefined && csrName !== serial && csrName !== thingName) {
      throw Errors.invalidSubject(`the CSR's common name must be the device serial or its thing name (${thingName}), or absent`);
    }
    const iotThing = claim.iot || input.attributes ? { ...claim.iot, ...(Object.keys(attributes).length ? { attributes } : {}) } : undefined;
    const now = this.clock.now();
    const iotTargetId = chooseTarget();

    try {
      const certificate = await this.certificates.issue(
        identity.ctx,
        { authorityId: claim.deviceAuthorityId, csr: input.csr, profile: claim.profile, thingName, metadata: { deviceSerial: serial }, ...(claim.validityDays ? { validityDays: claim.validityDays } : {}) },
        {
          parsedCsr: csr,
          claimId: claim.id,
          iotThing,
          iotTargetId,
          hardwareAttestation: input.attestation,
          createdByAws,
          reads,
          auditDetails: { claimId: claim.id, deviceSerial: serial, ...this.who(identity), reprovisioned: existing !== null },
          inTransaction: async (record) => {
            const device = { claimId: claim.id, deviceSerial: serial, certificateId: record.id, publicKeySha256, provisionedAt: now.toISOString() };
            if (existing) {
              await this.claims.replaceProvisioned(device);
              await this.claims.touch(claim.id, now.toISOString());
              // The device's earlier key is gone with its earlier life: its certificate must not outlive it.
              await this.certificates.revokeInTransaction(identity.ctx, existing.certificateId, 'superseded', { claimId: claim.id, deviceSerial: serial, supersededBy: record.id });
            } else {
              this.pendingWrites().add(claim, device);
            }
            if (idempotencyKey !== undefined) {
              this.pendingWrites().keys.push({ claimId: claim.id, idempotencyKey, requestSha256, certificateId: record.id, createdAt: now.toISOString() });
            }
          },
        },
      );
      if (existing) await this.certificates.refreshCrl(claim.deviceAuthorityId);
      return { certificate, deviceSerial: serial, replayed: false };
    } catch (err) {
      const raced = err instanceof ProvisionedMeanwhile || (idempotencyKey !== undefined && isUniqueViolation(err));
      if (!raced || lostRace) throw raced ? Errors.deviceAlreadyProvisioned(`serial ${serial} is being provisioned by another request`) : err;
      // A concurrent request for the same serial (or Idempotency-Key) won; answer as a retry of it would be answered.
      return this.run(identity, input, idempotencyKey, true);
    }
  }

  /**
   * The exchanges' own writes in the current transaction, made once for all the exchanges of a group commit just before
   * it commits (docs/architecture.md, "Group commit"): one multi-row INSERT of provisioned devices, the quota UPDATE
   * of every claim, one multi-row INSERT of Idempotency-Keys, all in one statement on PostgreSQL (ClaimRepository.
   * recordExchanges). Each would otherwise be a round trip per exchange inside the transaction that every writer waits for. All or nothing: when a serial was provisioned meanwhile, a key was used
   * meanwhile, or the claim has fewer slots left than the group needs, the group rolls back and each exchange runs
   * again alone, where exactly the ones that fail alone fail (Transactions.runGrouped).
   */
  private pendingWrites(): PendingExchangeWrites {
    return this.transactions.local(PENDING_EXCHANGE_WRITES, () => {
      const writes = new PendingExchangeWrites();
      this.transactions.beforeCommit(() => this.flush(writes));
      return writes;
    });
  }

  private async flush(writes: PendingExchangeWrites): Promise<void> {
    const slots = [...writes.slots.values()].map(({ claim, count, at }) => ({ claimId: claim.id, count, at }));
    const exhausted = await this.claims.recordExchanges(writes.devices, slots, writes.keys).catch((err: unknown) => {
      // A serial provisioned meanwhile, or an Idempotency-Key used meanwhile: each exchange runs again alone and, if it
      // is the one that lost, answers as a retry would be answered (run).
      throw isUniqueViolation(err) ? new ProvisionedMeanwhile() : err;
    });
    if (exhausted.length > 0) {
      const { claim } = writes.slots.get(exhausted[0])!;
      throw Errors.claimQuotaExhausted(`the claim has provisioned all ${claim.maxDevices} devices it allows`);
    }
  }

  /** A claim requiring TPM attestation takes only attested keys; one with attestation off takes none (docs/hardware-identity.md). */
  checkAttestation(claim: Claim, attestation: HardwareAttestation | undefined): void {
    if (claim.attestation === 'tpm' && !attestation) {
      throw Errors.attestationRequired(`claim ${claim.id} requires TPM attestation of the device key: enroll through POST /v1/provisioning/attestations (docs/hardware-identity.md)`);
    }
    if (claim.attestation === 'off' && attestation) throw Errors.attestationNotEnabled(`claim ${claim.id} does not take TPM-attested enrollments (its attestation is off)`);
  }

  /** The claim must be active, its certificate unrevoked, and now inside its window. */
  checkClaimUsable(identity: StationIdentity): void {
    const { claim, claimCertificate } = identity;
    if (claim.status === 'revoked' || claimCertificate.status === 'revoked') throw Errors.claimRevoked(`claim ${claim.id} is revoked`);
    const now = this.clock.now();
    if (now < new Date(claim.notBefore)) throw Errors.claimNotYetValid(`claim ${claim.id} opens at ${claim.notBefore}`);
    if (now >= new Date(claim.notAfter)) throw Errors.claimExpired(`claim ${claim.id} closed at ${claim.notAfter}`);
  }

  private who(identity: StationIdentity): Record<string, unknown> {
    return { station: { method: identity.method, claimCertificate: identity.claimCertificate.fingerprint, name: identity.station } };
  }
}

/** The value of `work`, or that it threw (the error is raised again where its turn comes). */
function attempt<T>(work: () => T): { ok: true; value: T } | { ok: false } {
  try {
    return { ok: true, value: work() };
  } catch {
    return { ok: false };
  }
}
