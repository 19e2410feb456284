import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { RequestLimitsModule } from './auth/request-limits';
import { AuthoritiesModule } from './authorities/authorities.module';
import { CertificatesModule } from './certificates/certificates.module';
import { RenewalModule } from './certificates/renewal.module';
import { ClaimsModule } from './claims/claims.module';
import { Clock } from './common/clock';
import { CommonModule } from './common/common.module';
import { ProblemFilter } from './common/problem.filter';
import { AppConfig } from './config/config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { JobsModule } from './jobs/jobs.module';
import { CertificateEventsBindingModule, IotModule } from './iot/iot.module';
import { SecureElementsModule } from './secure-elements/secure-elements.module';
import { KeysModule } from './keys/keys.module';
import { MetricsModule } from './metrics/metrics.module';
import { RevocationListPublisherBindingModule, RevocationModule } from './revocation/revocation.module';
import { RenewalCampaignsBindingModule, RotationModule } from './rotation/rotation.module';
import { FleetModule } from './fleet/fleet.module';
import { SetupModule } from './setup/setup.module';
import { EstModule } from './est/est.module';
import { TpmModule } from './tpm/tpm.module';
import { DeadJobsModule } from './dead-jobs/dead-jobs.module';

/**
 * Bootstrap only: wires the feature modules; nothing is provided here but the error filter. The order of the feature
 * modules is the order of their routes in openapi.yaml.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, clock?: Clock): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        CommonModule.forRoot(clock),
        MetricsModule,
        RequestLimitsModule,
        DatabaseModule,
        JobsModule,
        KeysModule,
        AuditModule,
        AuthModule,
        AuthoritiesModule,
        RevocationModule,
        CertificatesModule,
        HealthModule,
        IotModule,
        ClaimsModule,
        RenewalModule,
        RotationModule,
        EstModule,
        TpmModule,
        FleetModule,
        SetupModule,
        DeadJobsModule,
        SecureElementsModule,
        // Bindings of ports that certificates/ owns to the features above it (layer order: .dependency-cruiser.cjs).
        CertificateEventsBindingModule,
        RevocationListPublisherBindingModule,
        RenewalCampaignsBindingModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: ProblemFilter }],
    };
  }
}
