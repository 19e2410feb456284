import { Global, Injectable, Logger, Module } from '@nestjs/common';
import { AppConfig, KmsConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { Pacing } from '../common/pacing';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { KeyManager, KeyManagers } from './key-manager';
import { KeyBackend } from './key-spec';
import { LocalKeyManager } from './local/local-key-manager';
import { loadMasterKey } from './local/master-key';

@Injectable()
class ConfiguredKeyManagers extends KeyManagers {
  private readonly managers: KeyManager[];

  constructor(local: LocalKeyManager, kms: KeyManager | null) {
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

/**
 * Loaded only when AWS KMS is configured: the AWS SDK holds some 30 MB of memory in every process that loads it
 * (docs/architecture.md, "Memory").
 */
async function awsKmsKeyManager(config: KmsConfig, clock: Clock, pacing: Pacing): Promise<KeyManager> {
  const { AwsKmsKeyManager, kmsClient } = await import('./aws-kms/aws-kms-key-manager.js');
  return new AwsKmsKeyManager(kmsClient(config), config, clock, pacing);
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
      provide: KeyManagers,
      inject: [APP_CONFIG, LocalKeyManager, Clock, Pacing],
      useFactory: async (config: AppConfig, local: LocalKeyManager, clock: Clock, pacing: Pacing) =>
        new ConfiguredKeyManagers(local, config.kms ? await awsKmsKeyManager(config.kms, clock, pacing) : null),
    },
  ],
  exports: [KeyManagers],
})
export class KeysModule {}
