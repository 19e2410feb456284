import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificateRepository } from './certificate.repository';
import { CertificatesController } from './certificates.controller';
import { CertificatesService } from './certificates.service';
import { CsrParser } from './csr-parser';
import { TypeOrmCertificateRepository } from './typeorm-certificate.repository';

/**
 * Certificates: issuance, search, revocation. What must follow a certificate's changes in the features above this one
 * (AWS IoT: CertificateEvents; the CRL: RevocationListPublisher; rotation campaigns: RenewalCampaigns, for renewal)
 * reaches them through ports this folder owns and those features bind (iot/, revocation/, rotation/: their
 * *BindingModule), so this module imports none of them.
 */
@Module({
  imports: [AuthoritiesModule],
  controllers: [CertificatesController],
  providers: [CertificatesService, CsrParser, { provide: CertificateRepository, useClass: TypeOrmCertificateRepository }],
  exports: [CertificatesService, CertificateRepository, CsrParser],
})
export class CertificatesModule {}
