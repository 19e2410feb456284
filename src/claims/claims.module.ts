import { INestApplicationContext, Module } from '@nestjs/common';
import { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificateAuthModule } from '../certificates/certificate-auth.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { IotModule } from '../iot/iot.module';
import { AllowlistUploads } from './allowlist-uploads';
import { AwsCertificateProvider } from './aws-certificate-provider';
import { AwsCertificateProviderController } from './aws-certificate-provider.controller';
import { ClaimRepository } from './claim.repository';
import { ClaimsController } from './claims.controller';
import { ClaimsService } from './claims.service';
import { ExchangeService } from './exchange.service';
import { ProvisioningController } from './provisioning.controller';
import { EXCHANGE_PATH, StationAuthenticator } from './station-authenticator';
import { STATION } from './station.guard';
import { TypeOrmClaimRepository } from './typeorm-claim.repository';

@Module({
  imports: [AuthoritiesModule, CertificatesModule, IotModule, CertificateAuthModule],
  controllers: [ClaimsController, ProvisioningController, AwsCertificateProviderController],
  providers: [ClaimsService, AllowlistUploads, ExchangeService, AwsCertificateProvider, StationAuthenticator, { provide: ClaimRepository, useClass: TypeOrmClaimRepository }],
  // For EST (src/est/): enrollment under a claim label is this exchange.
  exports: [ClaimsService, ExchangeService, StationAuthenticator],
})
export class ClaimsModule {
  /** Routes whose body arrives as a stream (common/streamed-bodies.ts): the allow-list upload. For app.factory.ts. */
  static readonly streamedBodyRoutes: ReadonlySet<string> = new Set(['/v1/claims/:id/allowlist']);

  /** The route authenticated before its body is read (auth/pre-body-authentication.ts), for app.factory.ts. */
  static preBodyAuthenticators(app: INestApplicationContext): [route: string, authenticate: PreBodyAuthenticator][] {
    return [[`POST ${EXCHANGE_PATH}`, STATION.authenticatesWith(app.get(StationAuthenticator))]];
  }
}
