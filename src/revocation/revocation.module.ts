import { Global, INestApplicationContext, Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { RevocationListPublisher } from '../certificates/revocation-list-publisher.port';
import { CrlController } from './crl.controller';
import { CrlRepository } from './crl.repository';
import { CrlService } from './crl.service';
import { CrlWorker } from './crl-worker';
import { OcspSigners } from './ocsp-signers';
import { OcspHttpBinding } from './ocsp-http';
import { OcspRepository } from './ocsp.repository';
import { OcspService } from './ocsp.service';
import { TypeOrmCrlRepository } from './typeorm-crl.repository';
import { TypeOrmOcspRepository } from './typeorm-ocsp.repository';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { CrlWatermarks } from './crl-watermarks';
import { FileCrlWatermarks } from './file-crl-watermarks';

@Module({
  imports: [AuthoritiesModule, CertificatesModule],
  controllers: [CrlController],
  providers: [
    CrlService,
    CrlWorker,
    OcspService,
    OcspHttpBinding,
    OcspSigners,
    { provide: CrlRepository, useClass: TypeOrmCrlRepository },
    { provide: OcspRepository, useClass: TypeOrmOcspRepository },
    { provide: CrlWatermarks, useFactory: (config: AppConfig) => new FileCrlWatermarks(config.crl.stateFile), inject: [APP_CONFIG] },
  ],
  exports: [CrlService, OcspService, OcspHttpBinding],
})
export class RevocationModule {
  /**
   * The OCSP responder's binding: app.factory.ts hands it the requests for /ocsp ahead of the framework
   * (revocation/ocsp-http.ts says why).
   */
  static ocspBinding(app: INestApplicationContext): OcspHttpBinding {
    return app.get(OcspHttpBinding);
  }
}

/**
 * Binds certificates' RevocationListPublisher port to the CRL service. Global because certificates/ sits below
 * revocation/ and cannot import RevocationModule; it exports that one token. Registered in app.module.ts.
 */
@Global()
@Module({ imports: [RevocationModule], providers: [{ provide: RevocationListPublisher, useExisting: CrlService }], exports: [RevocationListPublisher] })
export class RevocationListPublisherBindingModule {}
