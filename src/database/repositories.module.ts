import { Global, Module } from '@nestjs/common';
import { AuditRepository } from '../audit/audit.repository';
import { TypeOrmAuditRepository } from '../audit/typeorm-audit.repository';
import { ApiKeyRepository } from '../auth/api-key.repository';
import { TypeOrmApiKeyRepository } from '../auth/typeorm-api-key.repository';
import { AuthorityRepository } from '../authorities/authority.repository';
import { TypeOrmAuthorityRepository } from '../authorities/typeorm-authority.repository';
import { CertificateRepository } from '../certificates/certificate.repository';
import { TypeOrmCertificateRepository } from '../certificates/typeorm-certificate.repository';
import { CrlRepository } from '../revocation/crl.repository';
import { TypeOrmCrlRepository } from '../revocation/typeorm-crl.repository';

/**
 * Binds every repository port to its TypeORM adapter in one place. Features depend on the ports only;
 * keeping the bindings here (rather than in each feature module) lets features read each other's data
 * without module import cycles (certificates ↔ revocation).
 */
@Global()
@Module({
  providers: [
    { provide: AuditRepository, useClass: TypeOrmAuditRepository },
    { provide: AuthorityRepository, useClass: TypeOrmAuthorityRepository },
    { provide: CertificateRepository, useClass: TypeOrmCertificateRepository },
    { provide: CrlRepository, useClass: TypeOrmCrlRepository },
    { provide: ApiKeyRepository, useClass: TypeOrmApiKeyRepository },
  ],
  exports: [AuditRepository, AuthorityRepository, CertificateRepository, CrlRepository, ApiKeyRepository],
})
export class RepositoriesModule {}
