import { Global, Injectable, Logger, Module } from '@nestjs/common';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { AwsKmsKeyManager, kmsClient } from './aws-kms/aws-kms-key-manager';
import { KeyManager, KeyManagers } from './key-manager';
import { KeyBackend } from './key-spec';
import { LocalKeyManager } from './local/local-key-manager';
import { loadMasterKey } from './local/master-key';

@Injectable()
class ConfiguredKeyManagers extends KeyManagers {
  private readonly managers: KeyManager[];

  constructor(local: LocalKeyManager, kms: AwsKmsKeyManager | null) {
    super();
    this.managers = kms ? [local, kms] : [local];
  }

  get(backend: KeyBackend): KeyManager {
    const manager = this.managers.find((m) => m.backend === backend);
    if (!manager) {
      throw Errors.keyBackendNotConfigured(
        backend === 'aws-kms'
          ? 'key backend "aws-kms" is not configured on this service (set AWS_REGION; see README "AWS KMS")'
          : `key backend "${backend}" is not configured on this service`,
      );
    }
    return manager;
  }

  all(): KeyManager[] {
    return this.managers;
  }
}

/** The key backends: local (always) and aws-kms (when an AWS region is configured). */
@Global()
@Module({
  providers: [
    {
      provide: LocalKeyManager,
      inject: [APP_CONFIG, TypeOrmTransactions, Clock],
      useFactory: (config: AppConfig, db: TypeOrmTransactions, clock: Clock) =>
        new LocalKeyManager(loadMasterKey(config, (line) => new Logger('Keys').log(line)), db, clock),
    },
    {
      provide: AwsKmsKeyManager,
      inject: [APP_CONFIG, Clock],
      useFactory: (config: AppConfig, clock: Clock) => (config.kms ? new AwsKmsKeyManager(kmsClient(config.kms), config.kms, clock) : null),
    },
    {
      provide: KeyManagers,
      inject: [LocalKeyManager, AwsKmsKeyManager],
      useFactory: (local: LocalKeyManager, kms: AwsKmsKeyManager | null) => new ConfiguredKeyManagers(local, kms),
    },
  ],
  exports: [KeyManagers],
})
export class KeysModule {}
