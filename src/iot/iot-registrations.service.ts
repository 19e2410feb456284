import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { AuthoritiesService, Issuer } from '../authorities/authorities.service';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { signCertificate } from '../pki/certificate';
import { pemEncode } from '../pki/der';
import { describeCertificate } from '../pki/issuance';
import { randomSerial } from '../pki/serial';
import { isSameCertificate, REGISTRATION_ADOPTED } from './adoption';
import { CertificateMode, DescribedCaCertificate, IotRegistry } from './iot-registry';
import { DeviceRegistration, IotCaRegistration } from './iot-registration';
import { PolicyTemplatesService } from './policy-templates.service';
import { IotRegistrationRepository } from './iot-registration.repository';
import { DEFAULT_TARGET_ID } from './iot-target';
import { IotTargetsService } from './iot-targets.service';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface RegisterCaRequest {
  certificateMode: CertificateMode;
  autoRegistration: boolean;
  setAsActive: boolean;
  deviceRegistration: DeviceRegistration;
  policyName?: string;
  provisioningTemplate?: { templateBody: string; roleArn: string };
  /** The IoT target to register with (docs/iot-targets.md); the default target when absent. */
  targetId?: string;
}

/** Registers authorities with AWS IoT (for JITR/JITP/API-mode devices) and deactivates them. */
@Injectable()
export class IotRegistrationsService {
  constructor(
    private readonly targets: IotTargetsService,
    private readonly repository: IotRegistrationRepository,
    private readonly authorities: AuthoritiesService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    private readonly policyTemplates: PolicyTemplatesService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async register(ctx: RequestContext, authorityId: string, request: RegisterCaRequest): Promise<IotCaRegistration> {
    if (request.deviceRegistration === 'jitp' && !request.provisioningTemplate) {
      throw Errors.validation('deviceRegistration "jitp" needs a provisioningTemplate');
    }
    if (request.deviceRegistration !== 'jitp' && request.provisioningTemplate) {
      throw Errors.validation('provisioningTemplate applies only to deviceRegistration "jitp"');
    }
    // Claim certificates are for our exchange only: a claim CA is never trusted by AWS IoT.
    const issuer = await this.authorities.issuer(authorityId, 'devices');
    const targetId = request.targetId ?? DEFAULT_TARGET_ID;
    const target = await this.targets.get(targetId);
    const previous = await this.repository.find(authorityId, targetId);
    if (previous?.status === 'ACTIVE') throw Errors.iotAlreadyRegistered(`the authority is already registered with AWS IoT in target ${targetId} (and active)`);
    if (request.certificateMode === 'DEFAULT') await this.checkDefaultModeFree(authorityId, target.id, target.region, target.accountId);
    const registry = await this.targets.registryFor(targetId);
    // Deactivated earlier: AWS IoT normally still holds the CA (INACTIVE). It is described, checked to be ours and
    // brought back to what is asked (UpdateCACertificate), as an adoption is; when AWS no longer has it, it is
    // registered afresh. Either way the registration row is replaced (docs/aws-behaviours.md, "Re-registration").
    const kept = previous ? await registry.describeCaCertificate(previous.caCertificateId) : undefined;

    // DEFAULT mode proves to AWS that we hold the CA key: a certificate for the account's registration code,
    // signed by the CA (in KMS or the local store) over a throw-away key.
    const verificationCertificatePem =
      request.certificateMode === 'DEFAULT' && !kept ? await this.verificationCertificate(issuer, await registry.registrationCode()) : undefined;
    const registered = kept ? { certificateId: kept.certificateId, certificateArn: kept.certificateArn, existing: kept } : await registry.registerCaCertificate({
      caCertificatePem: pemEncode('CERTIFICATE', issuer.authority.certificateDer),
      verificationCertificatePem,
      certificateMode: request.certificateMode,
      setAsActive: request.setAsActive,
      // JITR and JITP both rely on AWS registering device certificates on first connection.
      allowAutoRegistration: request.autoRegistration,
      registrationConfig: request.provisioningTemplate,
    });
    // AWS IoT already held a CA under this id: ours after a lost answer (adopted and brought to what was asked), or
    // someone else's (a clear 409).
    const adopted = registered.existing ? await this.adoptCa(registry, issuer.authority.certificateDer, request, registered.existing) : undefined;

    const now = this.clock.now().toISOString();
    const registration: IotCaRegistration = {
      authorityId,
      targetId,
      caCertificateId: registered.certificateId,
      caCertificateArn: registered.certificateArn,
      certificateMode: request.certificateMode,
      status: request.setAsActive ? 'ACTIVE' : 'INACTIVE',
      autoRegistration: request.autoRegistration,
      deviceRegistration: request.deviceRegistration,
      policyName: request.policyName ?? null,
      provisioningTemplate: request.provisioningTemplate ?? null,
      registeredAt: now,
      updatedAt: now,
    };
    await this.transactions.run(async () => {
      if (!previous) await this.repository.insert(registration);
      else if (!(await this.repository.replaceInactive(registration))) throw Errors.iotAlreadyRegistered('the authority was registered with AWS IoT again meanwhile');
      await this.audit.record(ctx, {
        action: 'authority.iot-registered',
        target: { type: 'authority', id: authorityId },
        details: {
          targetId,
          accountId: target.accountId,
          region: target.region,
          caCertificateId: registration.caCertificateId,
          certificateMode: registration.certificateMode,
          status: registration.status,
          autoRegistration: registration.autoRegistration,
          deviceRegistration: registration.deviceRegistration,
          policyName: registration.policyName,
          ...(adopted && !kept ? { adopted: true } : {}),
          ...(previous ? { reregistered: true, awsRegistration: kept ? 'reactivated' : 'registered-again', previousCaCertificateId: previous.caCertificateId } : {}),
          ...(kept ? { updated: adopted?.updated ?? [] } : {}),
        },
      });
      if (adopted && !kept) {
        await this.audit.record(ctx, {
          action: REGISTRATION_ADOPTED,
          target: { type: 'authority', id: authorityId },
          details: { awsOperation: 'RegisterCACertificate', caCertificateId: registration.caCertificateId, caCertificateArn: registration.caCertificateArn, updated: adopted.updated },
        });
      }
      // The managed policies go wherever a CA is registered (docs/iot-targets.md); the default target has them already.
      if (targetId !== DEFAULT_TARGET_ID) await this.policyTemplates.syncAllTo(targetId);
    });
    return registration;
  }

  /**
   * A CA AWS IoT already holds (ResourceAlreadyExistsException names it): adopted only when it is our certificate byte
   * for byte in the mode asked for. Its status, auto-registration and JITP template are then set to what the request
   * asks (UpdateCACertificate), so the result equals a registration that never lost its answer. A different
   * certificate, another mode (fixed at registration), or a JITP template we did not ask for stays a 409.
   */
  private async adoptCa(registry: IotRegistry, ours: Buffer, request: RegisterCaRequest, existing: DescribedCaCertificate): Promise<{ updated: string[] }> {
    const conflict = (why: string) =>
      Errors.iotConflict(`AWS IoT already holds CA certificate ${existing.certificateId}, ${why}; it was not adopted`, {
        awsError: 'ResourceAlreadyExistsException',
        resourceId: existing.certificateId,
        resourceArn: existing.certificateArn,
      });
    if (!isSameCertificate(existing.certificatePem, ours)) throw conflict('but it is not this authority\'s certificate');
    if (existing.certificateMode !== request.certificateMode) {
      throw conflict(`registered in ${existing.certificateMode} mode, not ${request.certificateMode} (the mode cannot be changed; deregister it in AWS IoT first)`);
    }
    const template = request.provisioningTemplate;
    const theirs = existing.registrationConfig;
    if (!template && (theirs?.templateBody || theirs?.templateName)) throw conflict('with a provisioning template this request does not ask for');
    const updated: string[] = [];
    if (existing.status !== (request.setAsActive ? 'ACTIVE' : 'INACTIVE')) updated.push('status');
    if (existing.autoRegistrationStatus !== (request.autoRegistration ? 'ENABLE' : 'DISABLE')) updated.push('autoRegistration');
    const templateDiffers = template !== undefined && (theirs?.templateBody !== template.templateBody || theirs?.roleArn !== template.roleArn);
    if (templateDiffers) updated.push('provisioningTemplate');
    if (updated.length > 0) {
      await registry.updateCaCertificate(existing.certificateId, {
        status: request.setAsActive ? 'ACTIVE' : 'INACTIVE',
        autoRegistration: request.autoRegistration,
        registrationConfig: templateDiffers ? template : undefined,
      });
    }
    return { updated };
  }

  /** The authority's registration, or null. */
  find(authorityId: string): Promise<IotCaRegistration | null> {
    return this.repository.find(authorityId);
  }

  async get(authorityId: string, targetId: string = DEFAULT_TARGET_ID): Promise<IotCaRegistration> {
    await this.authorities.get(authorityId);
    await this.targets.get(targetId);
    const registration = await this.repository.find(authorityId, targetId);
    if (!registration) throw Errors.iotRegistrationNotFound(`authority ${authorityId} is not registered with AWS IoT in target ${targetId}`);
    return registration;
  }

  /** The authority's registrations in every target. */
  async list(authorityId: string): Promise<IotCaRegistration[]> {
    await this.authorities.get(authorityId);
    return this.repository.listFor(authorityId);
  }

  /**
   * AWS IoT lets one account per region hold a CA in DEFAULT mode (others must use SNI_ONLY): refused here, before
   * any AWS call, when another target in the region (another account, or one we cannot tell apart) holds it so.
   */
  private async checkDefaultModeFree(authorityId: string, targetId: string, region: string, accountId: string | null): Promise<void> {
    for (const other of await this.repository.listFor(authorityId)) {
      if (other.targetId === targetId || other.certificateMode !== 'DEFAULT') continue;
      const otherTarget = await this.targets.get(other.targetId).catch(() => null);
      if (!otherTarget || otherTarget.region !== region) continue;
      if (accountId !== null && otherTarget.accountId === accountId) continue;
      throw Errors.iotDefaultModeTaken(
        `the CA is registered in DEFAULT mode in target ${other.targetId} (account ${otherTarget.accountId ?? 'unknown'}, ${region}); AWS IoT allows DEFAULT in one account per region: register it SNI_ONLY here`,
      );
    }
  }

  /** Sets the CA INACTIVE (and auto-registration off) in AWS IoT, then here. */
  async deactivate(ctx: RequestContext, authorityId: string, targetId: string = DEFAULT_TARGET_ID): Promise<IotCaRegistration> {
    const registration = await this.get(authorityId, targetId);
    if (registration.status === 'INACTIVE') return registration;
    await (await this.targets.registryFor(targetId)).deactivateCaCertificate(registration.caCertificateId);
    const at = this.clock.now().toISOString();
    await this.transactions.run(async () => {
      if (!(await this.repository.markInactive(authorityId, at, targetId))) return;
      await this.audit.record(ctx, {
        action: 'authority.iot-deactivated',
        target: { type: 'authority', id: authorityId },
        details: { caCertificateId: registration.caCertificateId, targetId },
      });
    });
    return { ...registration, status: 'INACTIVE', autoRegistration: false, updatedAt: at };
  }

  private async verificationCertificate(issuer: Issuer, registrationCode: string): Promise<string> {
    const { publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
    const { tbs } = describeCertificate({
      kind: 'iot-verification',
      issuer,
      registrationCode,
      subjectPublicKeyInfo: publicKey.export({ type: 'spki', format: 'der' }),
      now: this.clock.now(),
      backdateSeconds: this.config.issuance.backdateSeconds,
    });
    const der = await signCertificate({ serial: randomSerial(), ...tbs }, issuer.signer);
    return pemEncode('CERTIFICATE', der);
  }
}
