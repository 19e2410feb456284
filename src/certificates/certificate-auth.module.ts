import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificateAuthenticator } from './certificate-authenticator';
import { CertificatesModule } from './certificates.module';
import { TypeOrmUsedTokenIds } from './typeorm-used-token-ids.repository';
import { UsedTokenIds } from './used-token-ids.repository';

/** Authentication by a certificate this service issued (claim certificates, device certificates). */
@Module({
  imports: [AuthoritiesModule, CertificatesModule],
  providers: [CertificateAuthenticator, { provide: UsedTokenIds, useClass: TypeOrmUsedTokenIds }],
  exports: [CertificateAuthenticator],
})
export class CertificateAuthModule {}
