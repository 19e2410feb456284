import { Global, Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { Errors } from '../common/errors';
import { Pacing } from '../common/pacing';
import { DEFAULT_TARGET_ID, iotBudgetPrefix } from './iot-target';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { CertificateEvents } from '../certificates/certificate-events';
import { ImportedIdentitySync } from './imported-identity-sync';
import { IotDeviceSync } from './iot-device-sync';
import { IotEventsController } from './iot-events.controller';
import { IotRegistry } from './iot-registry';
import { IotRegistrationRepository } from './iot-registration.repository';
import { IotRegistrationsController } from './iot-registrations.controller';
import { IotRegistrationsService } from './iot-registrations.service';
import { TypeOrmIotRegistrationRepository } from './typeorm-iot-registration.repository';
import { PolicyTemplatesController } from './policy-templates.controller';
import { PolicyTemplatesService } from './policy-templates.service';
import { PolicyTemplateRepository } from './policy-template.repository';
import { TypeOrmPolicyTemplateRepository } from './typeorm-policy-template.repository';
import { TopicRuleDestinationEnabler } from './topic-rule-destination';
import { IotTargetsController } from './iot-targets.controller';
import { IotMovesController } from './iot-moves.controller';
import { IotTargetsService } from './iot-targets.service';
import { IotTargetRepository } from './iot-target.repository';
import { TypeOrmIotTargetRepository } from './typeorm-iot-target.repository';

/** Without an AWS region every IoT call is a clear 422, not a crash. */
class UnconfiguredIotRegistry extends IotRegistry {
  private refuse(): never {
    throw Errors.iotNotConfigured('AWS IoT is not configured on this service (set AWS_REGION; see README "AWS IoT")');
  }
  registrationCode(): Promise<string> {
    this.refuse();
  }
  registerCaCertificate(): Promise<{ certificateId: string; certificateArn: string }> {
    this.refuse();
  }
  describeCaCertificate(): Promise<undefined> {
    this.refuse();
  }
  updateCaCertificate(): Promise<void> {
    this.refuse();
  }
  deactivateCaCertificate(): Promise<void> {
    this.refuse();
  }
  registerCertificate(): Promise<{ certificateArn: string }> {
    this.refuse();
  }
  registerCertificateWithoutCa(): Promise<{ certificateArn: string }> {
    this.refuse();
  }
  describeCertificate(): Promise<undefined> {
    this.refuse();
  }
  updateCertificate(): Promise<void> {
    this.refuse();
  }
  createThing(): Promise<void> {
    this.refuse();
  }
  addThingToThingGroup(): Promise<void> {
    this.refuse();
  }
  thingTypeExists(): Promise<boolean> {
    this.refuse();
  }
  thingGroupExists(): Promise<boolean> {
    this.refuse();
  }
  attachPolicy(): Promise<void> {
    this.refuse();
  }
  attachThingPrincipal(): Promise<void> {
    this.refuse();
  }
  detachThingPrincipal(): Promise<void> {
    this.refuse();
  }
  thingArn(): Promise<string | undefined> {
    this.refuse();
  }
  createJob(): Promise<{ jobArn: string }> {
    this.refuse();
  }
  confirmTopicRuleDestination(): Promise<void> {
    this.refuse();
  }
  getTopicRuleDestination(): Promise<never> {
    this.refuse();
  }
  enableTopicRuleDestination(): Promise<void> {
    this.refuse();
  }
  getPolicy(): Promise<undefined> {
    this.refuse();
  }
  createPolicy(): Promise<{ versionId: string }> {
    this.refuse();
  }
  createPolicyVersion(): Promise<{ versionId: string }> {
    this.refuse();
  }
  listPolicyVersions(): Promise<[]> {
    this.refuse();
  }
  deletePolicyVersion(): Promise<void> {
    this.refuse();
  }
  listAttachedPolicies(): Promise<string[]> {
    this.refuse();
  }
  listCertificatesByCa(): Promise<[]> {
    this.refuse();
  }
}

@Module({
  imports: [AuthoritiesModule, CertificatesModule],
  controllers: [IotTargetsController, IotMovesController, IotRegistrationsController, IotEventsController, PolicyTemplatesController],
  providers: [
    IotRegistrationsService,
    IotTargetsService,
    { provide: IotTargetRepository, useClass: TypeOrmIotTargetRepository },
    PolicyTemplatesService,
    { provide: PolicyTemplateRepository, useClass: TypeOrmPolicyTemplateRepository },
    IotDeviceSync,
    ImportedIdentitySync,
    TopicRuleDestinationEnabler,
    { provide: IotRegistrationRepository, useClass: TypeOrmIotRegistrationRepository },
    {
      provide: IotRegistry,
      inject: [APP_CONFIG, Pacing],
      // The AWS SDK is loaded only when AWS IoT is configured (docs/architecture.md, "Memory").
      useFactory: async (config: AppConfig, pacing: Pacing) => {
        if (!config.iot) return new UnconfiguredIotRegistry();
        const { AwsIotRegistry, iotClient } = await import('./aws-iot-registry.js');
        const prefix = iotBudgetPrefix({ id: DEFAULT_TARGET_ID, accountId: config.iot.accountId ?? null, region: config.iot.region });
        return new AwsIotRegistry(iotClient(config.iot), config.iot.rateLimits, pacing, prefix);
      },
    },
  ],
  exports: [IotDeviceSync, ImportedIdentitySync, IotRegistry, IotTargetsService, IotRegistrationRepository, IotRegistrationsService, PolicyTemplatesService],
})
export class IotModule {}

/**
 * Binds certificates' CertificateEvents port to AWS IoT's device sync. Global because certificates/ sits below iot/
 * and cannot import IotModule; it exports that one token. Registered in app.module.ts.
 */
@Global()
@Module({ imports: [IotModule], providers: [{ provide: CertificateEvents, useExisting: IotDeviceSync }], exports: [CertificateEvents] })
export class CertificateEventsBindingModule {}
