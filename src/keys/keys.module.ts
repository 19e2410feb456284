import { Global, Injectable, Logger, Module } from '@nestjs/common';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { TypeOrmTransactions } from '../database/transactions';
import { KeyManager, KeyManagers } from './key-manager';
import { KeyBackend } from './key-spec';
import { LocalKeyManager } from './local/local-key-manager';
import { loadMasterKey } from './local/master-key';

@Injectable()
class ConfiguredKeyManagers extends KeyManagers {
  private readonly managers: KeyManager[];

  constructor(local: LocalKeyManager) {
    super();
    this.managers = [local];
  }

  get(backend: KeyBackend): KeyManager {
    const manager = this.managers.find((m) => m.backend === backend);
    if (!manager) throw Errors.keyBackendNotConfigured(`key backend "${backend}" is not configured on this service`);
    return manager;
  }

  all(): KeyManager[] {
    return this.managers;
  }
}

@Global()
@Module({
  providers: [
    {
      provide: LocalKeyManager,
      inject: [APP_CONFIG, TypeOrmTransactions, Clock],
      useFactory: (config: AppConfig, db: TypeOrmTransactions, clock: Clock) =>
        new LocalKeyManager(loadMasterKey(config, (line) => new Logger('Keys').log(line)), db, clock),
    },
    { provide: KeyManagers, useClass: ConfiguredKeyManagers },
  ],
  exports: [KeyManagers],
})
export class KeysModule {}
