import { Global, Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { RenewalCampaigns } from '../certificates/renewal-campaigns.port';
import { IotModule } from '../iot/iot.module';
import { AuthorityRotationService } from './authority-rotation.service';
import { RotationRepository } from './rotation.repository';
import { RotationsController } from './rotations.controller';
import { RotationsService } from './rotations.service';
import { TypeOrmRotationRepository } from './typeorm-rotation.repository';

/** Rotation campaigns and authority rotation (a device's own renewal is in certificates/, RenewalModule). */
@Module({
  imports: [AuthoritiesModule, CertificatesModule, IotModule],
  controllers: [RotationsController],
  providers: [RotationsService, AuthorityRotationService, { provide: RotationRepository, useClass: TypeOrmRotationRepository }],
  exports: [RotationsService, RotationRepository],
})
export class RotationModule {}

/**
 * Binds certificates' RenewalCampaigns port (what a renewal asks of the campaigns) to the rotation repository. Global
 * because certificates/ sits below rotation/ and cannot import RotationModule; it exports that one token. Registered
 * in app.module.ts.
 */
@Global()
@Module({ imports: [RotationModule], providers: [{ provide: RenewalCampaigns, useExisting: RotationRepository }], exports: [RenewalCampaigns] })
export class RenewalCampaignsBindingModule {}
