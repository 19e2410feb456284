import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificateAuthModule } from '../auth/certificate-auth.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { IotModule } from '../iot/iot.module';
import { AllowlistUploads } from './allowlist-uploads';
import { ClaimRepository } from './claim.repository';
import { ClaimsController } from './claims.controller';
import { ClaimsService } from './claims.service';
import { ExchangeService } from './exchange.service';
import { ProvisioningController } from './provisioning.controller';
import { StationAuthenticator } from './station-authenticator';
import { TypeOrmClaimRepository } from './typeorm-claim.repository';

@Module({
  imports: [AuthoritiesModule, CertificatesModule, IotModule, CertificateAuthModule],
  controllers: [ClaimsController, ProvisioningController],
  providers: [ClaimsService, AllowlistUploads, ExchangeService, StationAuthenticator, { provide: ClaimRepository, useClass: TypeOrmClaimRepository }],
})
export class ClaimsModule {}
