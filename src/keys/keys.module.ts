import { Global, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig, KmsConfig, Pkcs11Config } from '../config/config';
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
class ConfiguredKeyManagers extends KeyManagers implements OnApplicationShutdown {
  private readonly managers: KeyManager[];

  constructor(
    local: LocalKeyManager,
    kms: KeyManager | null,
    private readonly pkcs11: { manager: KeyManager; close(): void } | null,
  ) {
    super();
    this.managers = [local, ...(kms ? [kms] : []), ...(pkcs11 ? [pkcs11.manager] : [])];
  }

  onApplicationShutdown(): void {
    this.pkcs11?.close();
  }

  get(backend: KeyBackend): KeyManager {
    const manager = this.managers.find((m) => m.backend === backend);
    if (!manager) {
      throw Errors.keyBackendNotConfigured(
        backend === 'aws-kms'
          ? 'key backend "aws-kms" is not configured on this service (set AWS_REGION; see README "AWS KMS")'
          : backend === 'pkcs11'
            ? 'key backend "pkcs11" is not configured on this service (set PKCS11_MODULE, PKCS11_TOKEN_LABEL and PKCS11_PIN; see docs/pkcs11.md)'
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

/**
 * Loaded only when PKCS11_MODULE is set: opens the token and logs in at boot, so a wrong module path, token label or
 * PIN stops the start with a message naming the setting (docs/pkcs11.md).
 */
async function pkcs11KeyManager(config: Pkcs11Config): Promise<{ manager: KeyManager; close(): void }> {
  const [{ Pkcs11Token }, { Pkcs11KeyManager }] = await Promise.all([import('./pkcs11/pkcs11-token.js'), import('./pkcs11/pkcs11-key-manager.js')]);
  const logger = new Logger('PKCS11');
  const token = Pkcs11Token.open(config, (line) => logger.warn(line));
  logger.log(`PKCS #11 token "${token.label}" (serial ${token.serial}) opened through ${config.modulePath}`);
  return { manager: new Pkcs11KeyManager(token, (line) => logger.warn(line)), close: () => token.close() };
}

/** The key backends: local (always), aws-kms (when an AWS region is configured), pkcs11 (when PKCS11_MODULE is set). */
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
        new ConfiguredKeyManagers(
          local,
          config.kms ? await awsKmsKeyManager(config.kms, clock, pacing) : null,
          config.pkcs11 ? await pkcs11KeyManager(config.pkcs11) : null,
        ),
    },
  ],
  exports: [KeyManagers],
})
export class KeysModule {}
