import { Module } from '@nestjs/common';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { AuthoritiesController } from './authorities.controller';
import { AuthoritiesService } from './authorities.service';
import { PublicUrls } from './public-urls';
import { RevocationWatermarks } from './revocation-watermarks';

@Module({
  controllers: [AuthoritiesController],
  providers: [
    AuthoritiesService,
    RevocationWatermarks,
    { provide: PublicUrls, inject: [APP_CONFIG], useFactory: (config: AppConfig) => new PublicUrls(config.publicBaseUrl) },
  ],
  exports: [AuthoritiesService, PublicUrls, RevocationWatermarks],
})
export class AuthoritiesModule {}
