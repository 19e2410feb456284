import { INestApplicationContext, Module } from '@nestjs/common';
import { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificateAuthModule } from './certificate-auth.module';
import { CertificatesModule } from './certificates.module';
import { DeviceAuthenticator, RENEW_PATH } from './device-authenticator';
import { DEVICE } from './device.guard';
import { RenewalController } from './renewal.controller';
import { RenewalService } from './renewal.service';

/**
 * A device renews its own certificate (POST /v1/certificates/renew), authenticated by it. The rotation campaigns it
 * consults come through the RenewalCampaigns port (bound by rotation/). A module of its own, registered in
 * app.module.ts where the route's place in the API document is.
 */
@Module({
  imports: [AuthoritiesModule, CertificatesModule, CertificateAuthModule],
  controllers: [RenewalController],
  providers: [RenewalService, DeviceAuthenticator],
  // For EST (src/est/): re-enrollment is this renewal.
  exports: [RenewalService, DeviceAuthenticator],
})
export class RenewalModule {
  /** The route authenticated before its body is read (auth/pre-body-authentication.ts), for app.factory.ts. */
  static preBodyAuthenticators(app: INestApplicationContext): [route: string, authenticate: PreBodyAuthenticator][] {
    return [[`POST ${RENEW_PATH}`, DEVICE.authenticatesWith(app.get(DeviceAuthenticator))]];
  }
}
