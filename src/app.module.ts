import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { AuthoritiesModule } from './authorities/authorities.module';
import { CertificatesModule } from './certificates/certificates.module';
import { ClaimsModule } from './claims/claims.module';
import { Clock } from './common/clock';
import { CommonModule } from './common/common.module';
import { ProblemFilter } from './common/problem.filter';
import { AppConfig } from './config/config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { RepositoriesModule } from './database/repositories.module';
import { HealthModule } from './health/health.module';
import { JobsModule } from './jobs/jobs.module';
import { IotModule } from './iot/iot.module';
import { KeysModule } from './keys/keys.module';
import { MetricsModule } from './metrics/metrics.module';
import { RevocationModule } from './revocation/revocation.module';
import { RotationModule } from './rotation/rotation.module';
import { FleetModule } from './fleet/fleet.module';
import { SetupModule } from './setup/setup.module';

/** Bootstrap only: wires the feature modules; nothing is provided here but the error filter. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, clock?: Clock): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        CommonModule.forRoot(clock),
        MetricsModule,
        DatabaseModule,
        RepositoriesModule,
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
        RotationModule,
        FleetModule,
        SetupModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: ProblemFilter }],
    };
  }
}
