import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyRepository } from './api-key.repository';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { MeController } from './me.controller';
import { AuthGuard } from './auth.guard';
import { TypeOrmApiKeyRepository } from './typeorm-api-key.repository';

/** API keys, and the global guard that authenticates every request and checks the role matrix. */
@Module({
  controllers: [ApiKeysController, MeController],
  providers: [ApiKeysService, { provide: APP_GUARD, useClass: AuthGuard }, { provide: ApiKeyRepository, useClass: TypeOrmApiKeyRepository }],
  exports: [ApiKeysService],
})
export class AuthModule {}
