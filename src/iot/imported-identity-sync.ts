import { Injectable, OnModuleInit } from '@nestjs/common';
import { CertificateRecord } from '../certificates/certificate';
import { CertificateRepository } from '../certificates/certificate.repository';
import { Errors, finalError } from '../common/errors';
import { OutboxService } from '../jobs/outbox.service';
import { pemEncode } from '../pki/der';
import { isSameCertificate } from './adoption';
import { DEFAULT_TARGET_ID } from './iot-target';
import { IotTargetsService } from './iot-targets.service';

export const IMPORTED_JOB = {
  register: 'iot.register-imported-certificate',
  revoke: 'iot.revoke-imported-certificate',
} as const;

/** How an import registers its identities with AWS IoT (docs/secure-elements.md, "AWS IoT registration"). */
export type ImportedRegistrationMode = 'without-ca' | 'none';

/**
 * AWS IoT for pre-provisioned identities (certificates imported from secure-element manifests, not issued by us),
 * through the outbox so each call is paced to the target's quota (budget iot:<target>:RegisterCertificateWithoutCA):
 * RegisterCertificateWithoutCA ACTIVE (multi-account registration; devices send SNI), the policy attached when the import
 * names one; revocation sets it REVOKED. Every step is idempotent, so a job that runs again converges.
 */
@Injectable()
export class ImportedIdentitySync implements OnModuleInit {
  constructor(
    private readonly outbox: OutboxService,
    private readonly certificates: CertificateRepository,
    private readonly targets: IotTargetsService,
  ) {}

  onModuleInit(): void {
    const onDead = async (payload: Record<string, unknown>, error: string) => {
      if (typeof payload.certificateId === 'string') await this.certificates.setIotStatus(payload.certificateId, 'failed', error.slice(0, 1000));
    };
    this.outbox.register(IMPORTED_JOB.register, {
      run: (p) => this.register(String(p.certificateId), typeof p.policyName === 'string' ? p.policyName : null),
      onDead,
    });
    // A lost revocation would leave a revoked identity usable in AWS IoT: retried until it lands.
    this.outbox.register(IMPORTED_JOB.revoke, { run: (p) => this.revoke(String(p.certificateId)), retryForever: true });
  }

  /** Queues the registration, in the caller's transaction (the import's batch). */
  async scheduleRegistration(record: CertificateRecord, policyName: string | null): Promise<void> {
    await this.outbox.enqueue({
      kind: IMPORTED_JOB.register,
      payload: { certificateId: record.id, targetId: record.iotTargetId ?? DEFAULT_TARGET_ID, ...(policyName ? { policyName } : {}) },
      dedupeKey: `${IMPORTED_JOB.register}:${record.id}`,
      target: { type: 'certificate', id: record.id },
    });
  }

  /** Queues REVOKED in AWS IoT, in the revocation's transaction; nothing when the identity never went to AWS IoT. */
  async revoked(record: CertificateRecord): Promise<void> {
    if (record.iotStatus === 'none') return;
    await this.outbox.enqueue({ kind: IMPORTED_JOB.revoke, payload: { certificateId: record.id }, dedupeKey: `${IMPORTED_JOB.revoke}:${record.id}`, target: { type: 'certificate', id: record.id } });
  }

  private async register(certificateId: string, policyName: string | null): Promise<void> {
    const record = await this.certificates.findById(certificateId);
    if (!record) return;
    if (record.status === 'revoked') return this.revoke(certificateId);
    const registry = await this.targets.registryFor(record.iotTargetId ?? DEFAULT_TARGET_ID);
    const registered = await registry.registerCertificateWithoutCa(pemEncode('CERTIFICATE', record.certificateDer), 'ACTIVE');
    if (registered.existing) {
      // A retry after a lost answer, or the identity registered before: adopted only when it is byte for byte ours.
      if (!isSameCertificate(registered.existing.certificatePem, record.certificateDer)) {
        throw finalError(Errors.iotConflict(`AWS IoT already holds a different certificate under id ${record.fingerprint}; it was not adopted`, { awsError: 'ResourceAlreadyExistsException' }));
      }
      if (registered.existing.status === 'REVOKED') {
        await this.certificates.setIotStatus(record.id, 'revoked', 'AWS IoT already holds this certificate as REVOKED');
        return;
      }
      if (registered.existing.status !== 'ACTIVE') await registry.updateCertificate(record.fingerprint, 'ACTIVE');
    }
    if (policyName) await registry.attachPolicy(policyName, registered.certificateArn);
    // Read again: an identity revoked while this job ran ends REVOKED, never ACTIVE.
    const fresh = await this.certificates.findById(certificateId);
    if (fresh?.status === 'revoked') return this.revoke(certificateId);
    await this.certificates.setIotStatus(record.id, 'active', null);
  }

  private async revoke(certificateId: string): Promise<void> {
    const record = await this.certificates.findById(certificateId);
    if (!record) return;
    const registry = await this.targets.registryFor(record.iotTargetId ?? DEFAULT_TARGET_ID);
    const described = await registry.describeCertificate(record.fingerprint);
    // Unknown to AWS IoT: without a registered CA no device can use it there, so there is nothing to revoke.
    if (described && described.status !== 'REVOKED') await registry.updateCertificate(record.fingerprint, 'REVOKED');
    await this.certificates.setIotStatus(record.id, 'revoked', null);
  }
}
