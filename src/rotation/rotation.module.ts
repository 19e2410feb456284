import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificateAuthModule } from '../auth/certificate-auth.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { IotModule } from '../iot/iot.module';
import { AuthorityRotationService } from './authority-rotation.service';
import { DeviceAuthenticator } from './device-authenticator';
import { RenewalService } from './renewal.service';
import { RotationRepository } from './rotation.repository';
import { RotationsController } from './rotations.controller';
import { RotationsService } from './rotations.service';
import { TypeOrmRotationRepository } from './typeorm-rotation.repository';

/** Device renewal and rotation campaigns. */
@Module({
  imports: [AuthoritiesModule, CertificatesModule, IotModule, CertificateAuthModule],
  controllers: [RotationsController],
  providers: [DeviceAuthenticator, RenewalService, RotationsService, AuthorityRotationService, { provide: RotationRepository, useClass: TypeOrmRotationRepository }],
  exports: [RotationsService],
})
export class RotationModule {}
