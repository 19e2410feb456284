import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { HealthController } from './health.controller';
import { HealthService } from './health.service';

@Module({ imports: [AuthoritiesModule], controllers: [HealthController], providers: [HealthService] })
export class HealthModule {}
