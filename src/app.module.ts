import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { AuditController } from './audit/audit.controller';
import { AuditRepository } from './audit/audit.repository';
import { AuditService } from './audit/audit.service';
import { TypeOrmAuditRepository } from './audit/typeorm-audit.repository';
import { ApiKeyRepository } from './auth/api-key.repository';
import { ApiKeysController } from './auth/api-keys.controller';
import { ApiKeysService } from './auth/api-keys.service';
import { AuthGuard } from './auth/auth.guard';
import { TypeOrmApiKeyRepository } from './auth/typeorm-api-key.repository';
import { AuthoritiesController } from './authorities/authorities.controller';
import { AuthoritiesService } from './authorities/authorities.service';
import { AuthorityRepository } from './authorities/authority.repository';
import { PublicUrls } from './authorities/public-urls';
import { TypeOrmAuthorityRepository } from './authorities/typeorm-authority.repository';
import { CertificateRepository } from './certificates/certificate.repository';
import { CertificatesController } from './certificates/certificates.controller';
import { CertificatesService } from './certificates/certificates.service';
import { TypeOrmCertificateRepository } from './certificates/typeorm-certificate.repository';
import { Clock, SystemClock } from './common/clock';
import { ProblemFilter } from './common/problem.filter';
import { AppConfig } from './config/config';
import { APP_CONFIG, ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { HealthController } from './health/health.controller';
import { KeysModule } from './keys/keys.module';
import { MetricsService } from './metrics/metrics.service';
import { CrlController } from './revocation/crl.controller';
import { CrlRepository } from './revocation/crl.repository';
import { CrlService } from './revocation/crl.service';
import { TypeOrmCrlRepository } from './revocation/typeorm-crl.repository';

/** Cross-cutting providers every feature may use: clock, metrics, audit, repositories. */
@Global()
@Module({
  providers: [
    { provide: Clock, useClass: SystemClock },
    MetricsService,
    { provide: AuditRepository, useClass: TypeOrmAuditRepository },
    AuditService,
    { provide: AuthorityRepository, useClass: TypeOrmAuthorityRepository },
    { provide: CertificateRepository, useClass: TypeOrmCertificateRepository },
    { provide: CrlRepository, useClass: TypeOrmCrlRepository },
    { provide: ApiKeyRepository, useClass: TypeOrmApiKeyRepository },
    { provide: PublicUrls, inject: [APP_CONFIG], useFactory: (config: AppConfig) => new PublicUrls(config.publicBaseUrl) },
  ],
  exports: [Clock, MetricsService, AuditService, AuthorityRepository, CertificateRepository, CrlRepository, ApiKeyRepository, PublicUrls],
})
class CoreModule {}

@Module({
  imports: [KeysModule],
  controllers: [AuthoritiesController, CrlController, CertificatesController],
  providers: [AuthoritiesService, CrlService, CertificatesService],
})
class PkiModule {}

@Module({
  controllers: [ApiKeysController, AuditController, HealthController],
  providers: [ApiKeysService, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [ApiKeysService],
})
class AccessModule {}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), DatabaseModule, CoreModule, KeysModule, PkiModule, AccessModule],
      providers: [{ provide: APP_FILTER, useClass: ProblemFilter }],
    };
  }
}
