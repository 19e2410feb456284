import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CrlController } from './crl.controller';
import { CrlService } from './crl.service';
import { OcspSigners } from './ocsp-signers';
import { OcspHttpBinding } from './ocsp-http';
import { OcspRepository } from './ocsp.repository';
import { OcspService } from './ocsp.service';
import { TypeOrmOcspRepository } from './typeorm-ocsp.repository';

@Module({
  imports: [AuthoritiesModule],
  controllers: [CrlController],
  providers: [CrlService, OcspService, OcspHttpBinding, OcspSigners, { provide: OcspRepository, useClass: TypeOrmOcspRepository }],
  exports: [CrlService, OcspService, OcspHttpBinding],
})
export class RevocationModule {}
