import { Module } from '@nestjs/common';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { AuthoritiesController } from './authorities.controller';
import { AuthoritiesService } from './authorities.service';
import { AuthorityRepository } from './authority.repository';
import { PublicUrls } from './public-urls';
import { RevocationWatermarks } from './revocation-watermarks';
import { TypeOrmAuthorityRepository } from './typeorm-authority.repository';

@Module({
  controllers: [AuthoritiesController],
  providers: [
    AuthoritiesService,
    RevocationWatermarks,
    { provide: AuthorityRepository, useClass: TypeOrmAuthorityRepository },
    { provide: PublicUrls, inject: [APP_CONFIG], useFactory: (config: AppConfig) => new PublicUrls(config.publicBaseUrl) },
  ],
  exports: [AuthoritiesService, AuthorityRepository, PublicUrls, RevocationWatermarks],
})
export class AuthoritiesModule {}
