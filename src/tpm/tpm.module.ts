import { INestApplicationContext, Module } from '@nestjs/common';
import { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { StationAuthenticator } from '../claims/station-authenticator';
import { STATION } from '../claims/station.guard';
import { CertificatesModule } from '../certificates/certificates.module';
import { ClaimsModule } from '../claims/claims.module';
import { IotModule } from '../iot/iot.module';
import { AttestedEnrollmentController } from './attested-enrollment.controller';
import { AttestedEnrollmentService } from './attested-enrollment.service';
import { TpmRootsController } from './tpm-roots.controller';
import { TpmRootsService } from './tpm-roots.service';
import { TpmChallengeRepository, TpmRootRepository } from './tpm.repository';
import { TypeOrmTpmChallengeRepository, TypeOrmTpmRootRepository } from './typeorm-tpm.repository';

/** Hardware-rooted device identity: TPM manufacturer roots and TPM 2.0 attested enrollment (docs/hardware-identity.md). */
@Module({
  imports: [ClaimsModule, CertificatesModule, IotModule],
  controllers: [TpmRootsController, AttestedEnrollmentController],
  providers: [
    TpmRootsService,
    AttestedEnrollmentService,
    { provide: TpmRootRepository, useClass: TypeOrmTpmRootRepository },
    { provide: TpmChallengeRepository, useClass: TypeOrmTpmChallengeRepository },
  ],
  exports: [TpmRootsService, TpmRootRepository],
})
export class TpmModule {
  /**
   * The attested enrollment's two routes take the station's claim certificate as the exchange does, so they too
   * authenticate before their body is read (auth/pre-body-authentication.ts), for app.factory.ts.
   */
  static preBodyAuthenticators(app: INestApplicationContext): [route: string, authenticate: PreBodyAuthenticator][] {
    const station = STATION.authenticatesWith(app.get(StationAuthenticator));
    return [
      ['POST /v1/provisioning/attestations', station],
      ['POST /v1/provisioning/attestations/:challengeId/activation', station],
    ];
  }
}
