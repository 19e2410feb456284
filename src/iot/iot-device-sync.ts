import { Injectable, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { SYSTEM_CONTEXT } from '../common/actor';
import { AuthoritiesService } from '../authorities/authorities.service';
import { CertificateRecord, effectiveStatus, isImported } from '../certificates/certificate';
import { CertificateEvents, IssueFollowUp, IssueRegistration } from '../certificates/certificate-events';
import { CertificateRepository } from '../certificates/certificate.repository';
import { Clock } from '../common/clock';
import { Errors, finalError } from '../common/errors';
import { Transactions } from '../database/transactions';
import { OutboxService } from '../jobs/outbox.service';
import { pemEncode } from '../pki/der';
import { findProfile } from '../pki/profiles';
import { isSameCertificate, REGISTRATION_ADOPTED } from './adoption';
import { DescribedCertificate, IotRegistry } from './iot-registry';
import { PolicyTemplatesService } from './policy-templates.service';
import { IotCaRegistration } from './iot-registration';
import { IotRegistrationRepository } from './iot-registration.repository';
import { DEFAULT_TARGET_ID } from './iot-target';
import { IotTargetsService } from './iot-targets.service';
import { ImportedIdentitySync } from './imported-identity-sync';

export const JOB = {
  register: 'iot.register-certificate',
  activate: 'iot.activate-certificate',
  revoke: 'iot.revoke-certificate',
  rejectUnknown: 'iot.reject-certificate',
  retireSuperseded: 'iot.retire-superseded-certificate',
  move: 'iot.move-certificate',
} as const;

/**
 * Keeps AWS IoT in step with our certificates, through the outbox: API-mode registration at issuance,
 * activation or refusal after JITR, and revocation. Every step is idempotent, so a job that runs again
 * (crash, lost lease, retry after a timeout) converges on the same AWS state.
 */
@Injectable()
export class IotDeviceSync extends CertificateEvents implements OnModuleInit {
  constructor(
    private readonly outbox: OutboxService,
    private readonly registry: IotRegistry,
    private readonly registrations: IotRegistrationRepository,
    private readonly certificates: CertificateRepository,
    private readonly authorities: AuthoritiesService,
    private readonly clock: Clock,
    private readonly policyTemplates: PolicyTemplatesService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly targets: IotTargetsService,
    private readonly imported: ImportedIdentitySync,
  ) {
    super();
  }

  onModuleInit(): void {
    const onDead = async (payload: Record<string, unknown>, error: string) => {
      if (typeof payload.certificateId === 'string') await this.certificates.setIotStatus(payload.certificateId, 'failed', error.slice(0, 1000));
    };
    this.outbox.register(JOB.register, { run: (p) => this.register(String(p.certificateId)), onDead });
    this.outbox.register(JOB.activate, { run: (p) => this.activate(String(p.certificateId)), onDead });
    // A lost revocation would leave a revoked certificate usable in AWS IoT: it is retried until it lands.
    this.outbox.register(JOB.revoke, { run: (p) => this.revoke(String(p.certificateId)), retryForever: true });
    this.outbox.register(JOB.rejectUnknown, { run: (p) => this.rejectUnknown(String(p.awsCertificateId), typeof p.targetId === 'string' ? p.targetId : DEFAULT_TARGET_ID), retryForever: true });
    this.outbox.register(JOB.move, { run: (p) => this.move(String(p.certificateId), String(p.toTargetId)), onDead });
    this.outbox.register(JOB.retireSuperseded, { run: (p) => this.retireSuperseded(String(p.certificateId), String(p.replacementId)), onDead });
  }

  async prepareIssue(authorityId: string, iotTargetId: string = DEFAULT_TARGET_ID, options: { createdByAws?: boolean; registration?: IssueRegistration | null } = {}): Promise<IssueFollowUp> {
    // An allocation (a profile's, from configuration) may name a target deleted since: refused, not recorded.
    await this.targets.get(iotTargetId);
    // AWS IoT creates it from the certificate provider's answer (CreateCertificateFromCsr): registering it as well
    // would collide with AWS's own creation. Marked so that its revocation reaches AWS IoT (revoked() below).
    if (options.createdByAws) return { iotStatus: 'aws-created', schedule: async () => undefined };
    const registration = options.registration !== undefined ? options.registration : await this.registrations.find(authorityId, iotTargetId);
    if (!registration || registration.status !== 'ACTIVE' || registration.deviceRegistration !== 'api') {
      return { iotStatus: 'none', schedule: async () => undefined };
    }
    return {
      iotStatus: 'pending',
      schedule: async (record) => {
        await this.outbox.enqueue({ kind: JOB.register, payload: { certificateId: record.id, targetId: iotTargetId }, dedupeKey: `${JOB.register}:${record.id}`, target: { type: 'certificate', id: record.id } });
      },
    };
  }

  async revoked(record: CertificateRecord): Promise<void> {
    // A pre-provisioned identity (docs/secure-elements.md) is registered without a CA of ours: its own path.
    if (isImported(record)) return this.imported.revoked(record);
    // Whatever the mode, AWS IoT may know the certificate (API registration, or JITR on first connect), and not only in
    // its current target: a moved certificate may still be held by an old one (docs/iot-targets.md, "Re-allocation").
    // A certificate AWS IoT created itself (fleet provisioning through the certificate provider) is held there whether
    // or not its CA is registered: UpdateCertificate REVOKED, keyed by its AWS id (= our fingerprint).
    if (record.iotStatus !== 'aws-created' && (await this.registrations.listFor(record.authorityId)).length === 0) return;
    await this.outbox.enqueue({ kind: JOB.revoke, payload: { certificateId: record.id, targetId: targetOf(record) }, dedupeKey: `${JOB.revoke}:${record.id}`, target: { type: 'certificate', id: record.id } });
  }

  async superseded(old: CertificateRecord, replacement: CertificateRecord, graceUntil: Date): Promise<void> {
    if ((await this.registrations.listFor(old.authorityId)).length === 0) return;
    await this.outbox.enqueue({
      kind: JOB.retireSuperseded,
      payload: { certificateId: old.id, replacementId: replacement.id },
      dedupeKey: `${JOB.retireSuperseded}:${old.id}`,
      target: { type: 'certificate', id: old.id },
      runAfter: graceUntil,
    });
  }

  /**
   * After the renewal grace period: the superseded certificate is detached from its thing and set INACTIVE.
   * In API mode that waits until the replacement is ACTIVE and attached, so a device is never left with neither.
   * A target the certificate was moved out of may still hold it: it is set INACTIVE there too.
   */
  private async retireSuperseded(certificateId: string, replacementId: string): Promise<void> {
    const record = await this.certificates.findById(certificateId);
    if (!record || record.status === 'revoked') return; // a revocation has its own job, and REVOKED is final
    const registry = await this.iot(record);
    const described = await registry.describeCertificate(record.fingerprint);
    const live = described !== undefined && described.status !== 'REVOKED' && described.status !== 'INACTIVE';
    if (live) {
      const registration = await this.registrations.find(record.authorityId, targetOf(record));
      const replacement = await this.certificates.findById(replacementId);
      if (registration?.deviceRegistration === 'api' && replacement && replacement.status !== 'revoked' && replacement.iotStatus !== 'active') {
        throw new Error(`the replacement certificate ${replacementId} is not ACTIVE in AWS IoT yet`);
      }
      if (record.thingName) await registry.detachThingPrincipal(record.thingName, described.certificateArn);
      await registry.updateCertificate(record.fingerprint, 'INACTIVE');
    }
    await this.settleOtherTargets(record, 'INACTIVE');
    if (live || described?.status === 'INACTIVE') await this.certificates.setIotStatus(record.id, 'inactive', null);
  }

  /**
   * Every target but the certificate's own where its authority is registered (so where AWS may hold it: an earlier
   * target of a move whose job has not finished, failed, or was superseded by a later move) ends `status` there:
   * REVOKED for a revocation, INACTIVE (detached from its thing) otherwise. A target that does not hold it, or holds it
   * REVOKED (final), needs nothing. Revocations, moves and retirements are rare: the extra calls are cheap.
   */
  private async settleOtherTargets(record: CertificateRecord, status: 'REVOKED' | 'INACTIVE'): Promise<void> {
    for (const { targetId } of await this.registrations.listFor(record.authorityId)) {
      if (await this.isCurrentTarget(record.id, targetId)) continue;
      const registry = await this.targets.registryFor(targetId);
      const described = await registry.describeCertificate(record.fingerprint);
      if (!described || described.status === 'REVOKED' || described.status === status) continue;
      // Read again just before acting: a job working from a stale record (an earlier move's, racing a later move)
      // must not take the certificate out of the target it has just been moved to.
      if (await this.isCurrentTarget(record.id, targetId)) continue;
      if (status === 'INACTIVE' && record.thingName) await registry.detachThingPrincipal(record.thingName, described.certificateArn);
      await registry.updateCertificate(record.fingerprint, status);
    }
  }

  private async isCurrentTarget(certificateId: string, targetId: string): Promise<boolean> {
    const fresh = await this.certificates.findById(certificateId);
    return fresh === null || targetOf(fresh) === targetId;
  }

  /** Schedules what a JITR event calls for; returns the decision (for the audit log and the caller). */
  async onRegistrationEvent(awsCertificateId: string, caCertificateId: string, awsAccountId: string | undefined): Promise<{ decision: 'activate' | 'reject' | 'duplicate' | 'not-our-ca'; certificateId: string | null; targetIds: string[] }> {
    const registrations = await this.registrations.listByCaCertificateId(caCertificateId);
    // An event for someone else's CA is not ours to act on.
    if (registrations.length === 0) return { decision: 'not-our-ca', certificateId: null, targetIds: [] };
    if (awsAccountId === undefined) throw Errors.validation('a JITR event names the AWS account it comes from (awsAccountId)');
    // The event is checked against the target(s) of the account it comes from (docs/iot-targets.md, "JITR events"):
    // never applied to another account's registration, nor to the default one by default.
    const targetIds = await this.eventTargets(registrations, awsAccountId);
    if (targetIds.length === 0) throw Errors.iotEventUnknownTarget(`the CA ${caCertificateId} has no registration of ours in AWS account ${awsAccountId}`);
    const record = await this.certificates.findByFingerprint(awsCertificateId);
    const ours = record !== null && targetIds.includes(targetOf(record)) && registrations.some((r) => r.targetId === targetOf(record) && r.authorityId === record.authorityId);
    if (!ours) {
      // Unknown here, or allocated to another account: refused in the account that saw it.
      let queued = false;
      for (const targetId of targetIds) {
        const dedupeKey = targetId === DEFAULT_TARGET_ID ? `${JOB.rejectUnknown}:${awsCertificateId}` : `${JOB.rejectUnknown}:${targetId}:${awsCertificateId}`;
        if (await this.outbox.enqueue({ kind: JOB.rejectUnknown, payload: { awsCertificateId, targetId }, dedupeKey })) queued = true;
      }
      return { decision: queued ? 'reject' : 'duplicate', certificateId: null, targetIds };
    }
    const usable = this.usable(record);
    const at = [targetOf(record)];
    // Idempotent by state: what AWS already shows as settled needs nothing more.
    if ((usable && record.iotStatus === 'active') || (!usable && record.iotStatus === 'revoked')) {
      return { decision: 'duplicate', certificateId: record.id, targetIds: at };
    }
    const kind = usable ? JOB.activate : JOB.revoke;
    // Keyed by the event (not shared with the revocation's own job, which may have run before AWS knew the
    // certificate): one live job per certificate and decision, so a replayed event adds nothing.
    const queued = await this.outbox.enqueue({ kind, payload: { certificateId: record.id }, dedupeKey: `jitr:${kind}:${record.id}`, target: { type: 'certificate', id: record.id } });
    if (queued && usable) await this.certificates.setIotStatus(record.id, 'pending', null);
    return { decision: queued ? (usable ? 'activate' : 'reject') : 'duplicate', certificateId: record.id, targetIds: at };
  }

  /**
   * The targets, among those the CA is registered in, of the event's account: a target naming that account, or the
   * default target when AWS_ACCOUNT_ID is unset and no stored target names the account. Events carry no region: where
   * one account has the CA in several regions, each of them is a candidate.
   */
  private async eventTargets(registrations: IotCaRegistration[], awsAccountId: string): Promise<string[]> {
    const targets = await this.targets.list();
    const named = targets.some((t) => t.accountId === awsAccountId);
    return registrations
      .filter((r) => {
        const target = targets.find((t) => t.id === r.targetId);
        return target !== undefined && (target.accountId === awsAccountId || (target.accountId === null && !named));
      })
      .map((r) => r.targetId);
  }

  /** API mode: register INACTIVE, thing, policy, thing ↔ certificate, and only then ACTIVE. */
  private async register(certificateId: string): Promise<void> {
    const { record, registration, caPem } = await this.load(certificateId);
    if (!this.usable(record)) return this.revokeRecord(record, registration.status, caPem);
    const registered = await (await this.iot(record)).registerCertificate(pemEncode('CERTIFICATE', record.certificateDer), caPem, 'INACTIVE');
    if (registered.existing) {
      // A revocation that committed after this job read the certificate may have reached AWS first: its job registers
      // a certificate AWS has not seen as REVOKED. REVOKED is then the end state we want, not a conflict.
      if (registered.existing.status === 'REVOKED' && isSameCertificate(registered.existing.certificatePem, record.certificateDer)) {
        const current = await this.certificates.findById(record.id);
        if (current && !this.usable(current)) return this.revokeRecord(current, registration.status, caPem);
      }
      // ResourceAlreadyExists. After an earlier run of this job got its answer ('registered') that is expected;
      // otherwise AWS accepted a registration whose answer was lost (or someone else registered it): adopt it only
      // when it is our certificate and can still be activated.
      this.checkAdoptable(record, registered.existing, registration.caCertificateId);
      if (record.iotStatus !== 'registered') {
        await this.recordAdoption(record, registered.existing, 'registered');
      }
    } else {
      await this.certificates.setIotStatus(record.id, 'registered', null, record.iotTargetId);
    }
    await this.attach(record, registration.policyName, registered.certificateArn);
    await this.finish(record.id, caPem);
  }

  /** After JITR: AWS holds the certificate PENDING_ACTIVATION; give it its thing and policy, then activate. */
  private async activate(certificateId: string): Promise<void> {
    const { record, registration, caPem } = await this.load(certificateId);
    if (!this.usable(record)) return this.revokeRecord(record, registration.status, caPem);
    const described = await (await this.iot(record)).describeCertificate(record.fingerprint);
    if (!described) throw new Error('AWS IoT does not know the certificate yet');
    if (described.status === 'REVOKED') {
      await this.certificates.setIotStatus(record.id, 'revoked', null);
      return;
    }
    await this.attach(record, registration.policyName, described.certificateArn);
    await this.finish(record.id, caPem);
  }

  private async revoke(certificateId: string): Promise<void> {
    const record = await this.certificates.findById(certificateId);
    if (!record) return;
    const registration = await this.registrations.find(record.authorityId, targetOf(record));
    const caPem = pemEncode('CERTIFICATE', (await this.authorities.get(record.authorityId)).certificateDer);
    // The current target first: a failing old target (retried until it answers) does not hold it up.
    await this.revokeRecord(record, registration?.status ?? 'INACTIVE', caPem);
    await this.settleOtherTargets(record, 'REVOKED');
  }

  /**
   * REVOKED in AWS IoT. A certificate AWS has not seen yet is registered as REVOKED under its (active) CA,
   * so a later first connection (JITR, or JITP which activates without asking us) is refused.
   */
  private async revokeRecord(record: CertificateRecord, caStatus: 'ACTIVE' | 'INACTIVE', caPem: string): Promise<void> {
    const registry = await this.iot(record);
    const described = await registry.describeCertificate(record.fingerprint);
    if (described) {
      if (described.status !== 'REVOKED') await registry.updateCertificate(record.fingerprint, 'REVOKED');
    } else if (caStatus === 'ACTIVE') {
      const registered = await registry.registerCertificate(pemEncode('CERTIFICATE', record.certificateDer), caPem, 'REVOKED');
      if (registered.existing) {
        // It appeared between the describe and the register (a lost answer, or JITR): make sure it ends REVOKED.
        if (!isSameCertificate(registered.existing.certificatePem, record.certificateDer)) throw this.notOurs(record, registered.existing);
        if (registered.existing.status !== 'REVOKED') await registry.updateCertificate(record.fingerprint, 'REVOKED');
        await this.recordAdoption(record, registered.existing, 'revoked');
        return;
      }
    } else {
      return; // unknown to AWS under an inactive CA: no device can use it there
    }
    await this.certificates.setIotStatus(record.id, 'revoked', null);
  }

  /**
   * The certificate AWS IoT named must be ours, byte for byte, registered under our issuing CA's AWS registration (not
   * without a CA, nor under another CA with the same subject: its status and mode would follow that registration, not
   * ours), and not REVOKED there (REVOKED is final in AWS IoT).
   */
  private checkAdoptable(record: CertificateRecord, existing: DescribedCertificate, ourCaCertificateId: string): void {
    if (!isSameCertificate(existing.certificatePem, record.certificateDer)) throw this.notOurs(record, existing);
    if (existing.caCertificateId?.toLowerCase() !== ourCaCertificateId.toLowerCase()) {
      throw finalError(
        Errors.iotConflict(
          `AWS IoT already holds certificate ${record.fingerprint} ${existing.caCertificateId ? `under CA ${existing.caCertificateId}` : 'registered without a CA'}, not under our CA ${ourCaCertificateId}; it was not adopted (docs/aws-behaviours.md)`,
          { awsError: 'ResourceAlreadyExistsException', resourceArn: existing.certificateArn },
        ),
      );
    }
    if (existing.status === 'REVOKED') {
      throw finalError(
        Errors.iotConflict(`AWS IoT already holds certificate ${record.fingerprint} as REVOKED, and a revoked certificate cannot be activated there`, {
          awsError: 'ResourceAlreadyExistsException',
          resourceArn: existing.certificateArn,
        }),
      );
    }
  }

  private notOurs(record: CertificateRecord, existing: DescribedCertificate) {
    // No retry changes what AWS holds: dead-letter at once with the reason.
    return finalError(
      Errors.iotConflict(`AWS IoT already holds a different certificate under id ${record.fingerprint}; it was not adopted`, {
        awsError: 'ResourceAlreadyExistsException',
        resourceArn: existing.certificateArn,
      }),
    );
  }

  /** The adopted registration recorded as the normal path records it, with an audit event saying it was adopted. */
  private async recordAdoption(record: CertificateRecord, existing: DescribedCertificate, iotStatus: 'registered' | 'revoked'): Promise<void> {
    await this.transactions.run(async () => {
      await this.certificates.setIotStatus(record.id, iotStatus, null, iotStatus === 'revoked' ? undefined : record.iotTargetId);
      await this.audit.record(SYSTEM_CONTEXT, {
        action: REGISTRATION_ADOPTED,
        target: { type: 'certificate', id: record.id },
        details: {
          awsOperation: 'RegisterCertificate',
          certificateId: record.fingerprint,
          certificateArn: existing.certificateArn,
          awsStatus: existing.status,
          caCertificateId: existing.caCertificateId ?? null,
        },
      });
    });
  }

  private async rejectUnknown(awsCertificateId: string, targetId: string): Promise<void> {
    const registry = await this.targets.registryFor(targetId);
    const described = await registry.describeCertificate(awsCertificateId);
    if (described && described.status !== 'REVOKED') await registry.updateCertificate(awsCertificateId, 'REVOKED');
  }

  /**
   * Policy, thing (type, attributes, group) and thing ↔ certificate. The certificate's own settings (a factory
   * claim's, in record.iotThing) override the registration's policy. Each call is idempotent in AWS IoT (attaching
   * again, creating an existing thing, adding a thing to a group it is in), so a job that runs again converges.
   */
  private async attach(record: CertificateRecord, registrationPolicyName: string | null, certificateArn: string): Promise<void> {
    const settings = record.iotThing;
    const registry = await this.iot(record);
    // The claim's policy, else the CA registration's, else the profile's template (devices: the thing-scoped default).
    const policyName = settings?.policyName ?? registrationPolicyName ?? this.profileTemplate(record.profile);
    // A managed template reaches AWS IoT through its own job: wait for it rather than fail on a missing policy.
    if (policyName && (await this.policyTemplates.awaitingSync(policyName))) throw new Error(`policy template ${policyName} is not in AWS IoT yet`);
    if (policyName) await registry.attachPolicy(policyName, certificateArn);
    if (record.thingName) {
      await registry.createThing(record.thingName, { thingTypeName: settings?.thingTypeName, attributes: settings?.attributes });
      if (settings?.thingGroupName) await registry.addThingToThingGroup(settings.thingGroupName, record.thingName);
      await registry.attachThingPrincipal(record.thingName, certificateArn);
    }
  }

  /** The last step reads our record again: a certificate revoked meanwhile ends REVOKED, never ACTIVE. */
  private async finish(certificateId: string, caPem: string): Promise<void> {
    const record = (await this.certificates.findById(certificateId))!;
    if (!this.usable(record)) return this.revokeRecord(record, 'ACTIVE', caPem);
    await (await this.iot(record)).updateCertificate(record.fingerprint, 'ACTIVE');
    // Moved to another target meanwhile: 'active' here would tell the move's job the device is live there already.
    await this.certificates.setIotStatus(record.id, 'active', null, record.iotTargetId);
  }

  private profileTemplate(profileName: string): string | null {
    try {
      return findProfile(profileName, { internal: true }).iotPolicyTemplate ?? null;
    } catch {
      return null;
    }
  }

  private usable(record: CertificateRecord): boolean {
    return effectiveStatus(record, this.clock.now()) === 'active';
  }

  private async load(certificateId: string) {
    const record = await this.certificates.findById(certificateId);
    if (!record) throw new Error(`certificate ${certificateId} not found`);
    const registration = await this.registrations.find(record.authorityId, targetOf(record));
    if (!registration) throw new Error(`authority ${record.authorityId} is not registered with AWS IoT in target ${targetOf(record)}`);
    const caPem = pemEncode('CERTIFICATE', (await this.authorities.get(record.authorityId)).certificateDer);
    return { record, registration, caPem };
  }

  /** The AWS IoT client of the certificate's target. */
  private iot(record: CertificateRecord): Promise<IotRegistry> {
    return this.targets.registryFor(targetOf(record));
  }

  /**
   * Moves a device to another target (docs/iot-targets.md, "Re-allocation"): its record already names the new target;
   * it is registered, given its thing and policy and made ACTIVE there first (the API-mode path), and only then set
   * INACTIVE in every other target that holds it — not only `fromTargetId`: after A→B→C the second job must also
   * reach A, whose own job gave way ("moved again") — so the device always has one account to connect to.
   */
  private async move(certificateId: string, toTargetId: string): Promise<void> {
    const record = await this.certificates.findById(certificateId);
    if (!record || targetOf(record) !== toTargetId) return; // moved again meanwhile: the later move's job does the work
    if (!this.usable(record)) return this.revoke(certificateId);
    if (record.iotStatus !== 'active') await this.register(certificateId);
    await this.settleOtherTargets(record, 'INACTIVE');
  }

  /**
   * Starts a move (the caller checked the target): the record names the new target at once, the outbox does the rest.
   * Returns false when the certificate is in that target already.
   */
  async startMove(certificate: CertificateRecord, toTargetId: string): Promise<boolean> {
    const from = targetOf(certificate);
    if (from === toTargetId) return false;
    const registration = await this.registrations.find(certificate.authorityId, toTargetId);
    if (!registration || registration.status !== 'ACTIVE') {
      throw Errors.iotRegistrationNotFound(`the certificate's authority has no ACTIVE AWS IoT registration in target ${toTargetId}`);
    }
    await this.certificates.setIotTarget(certificate.id, toTargetId === DEFAULT_TARGET_ID ? null : toTargetId);
    await this.certificates.setIotStatus(certificate.id, 'pending', null);
    await this.outbox.enqueue({
      kind: JOB.move,
      payload: { certificateId: certificate.id, fromTargetId: from, toTargetId },
      dedupeKey: `${JOB.move}:${certificate.id}:${toTargetId}`,
      target: { type: 'certificate', id: certificate.id },
    });
    return true;
  }
}


function targetOf(record: CertificateRecord): string {
  return record.iotTargetId ?? DEFAULT_TARGET_ID;
}
