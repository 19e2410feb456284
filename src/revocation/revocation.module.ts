import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CrlController } from './crl.controller';
import { CrlService } from './crl.service';
import { OcspSigners } from './ocsp-signers';
import { OcspController } from './ocsp.controller';
import { OcspRepository } from './ocsp.repository';
import { OcspService } from './ocsp.service';
import { TypeOrmOcspRepository } from './typeorm-ocsp.repository';

@Module({
  imports: [AuthoritiesModule],
  controllers: [CrlController, OcspController],
  providers: [CrlService, OcspService, OcspSigners, { provide: OcspRepository, useClass: TypeOrmOcspRepository }],
  exports: [CrlService, OcspService],
})
export class RevocationModule {}
