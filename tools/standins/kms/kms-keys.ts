import { generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto';
import { AwsError } from '../http/aws-error';

export type KmsKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'SYMMETRIC_DEFAULT';
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';
export type KeyTag = { TagKey: string; TagValue: string };

export interface StandInKey {
  id: string;
  arn: string;
  spec: KmsKeySpec;
  usage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT';
  state: KeyState;
  description: string;
  tags: KeyTag[];
  /** Epoch seconds, as KMS answers it. */
  created: number;
  deletionDate?: number;
  privateKey?: KeyObject;
  publicKey?: KeyObject;
}

/** The signing algorithms KMS offers per key spec. */
export const SIGNING_ALGORITHMS: Record<string, string[]> = {
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  ECC_NIST_P384: ['ECDSA_SHA_384'],
  RSA_2048: ['RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512', 'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512'],
};
SIGNING_ALGORITHMS.RSA_3072 = SIGNING_ALGORITHMS.RSA_2048;
SIGNING_ALGORITHMS.RSA_4096 = SIGNING_ALGORITHMS.RSA_2048;

const KEY_SPECS: KmsKeySpec[] = ['ECC_NIST_P256', 'ECC_NIST_P384', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'SYMMETRIC_DEFAULT'];

/** The resource quotas behind LimitExceededException. */
export interface KmsQuotas {
  maxKeys: number;
  maxAliasesPerKey: number;
}

/** The account's keys and aliases, and the key operations on them: create, describe, aliases, state changes. */
export class KmsKeys {
  readonly keys = new Map<string, StandInKey>();
  private readonly aliases = new Map<string, string>();

  constructor(
    private readonly region: string,
    private readonly account: string,
    /** Read on every call: the quotas can change while the stand-in runs. */
    private readonly quotas: () => KmsQuotas,
  ) {}

  create(body: Record<string, unknown>): unknown {
    const { maxKeys } = this.quotas();
    if (this.keys.size >= maxKeys) {
      throw new AwsError('LimitExceededException', `You have reached the quota of ${maxKeys} customer managed KMS keys in this account and Region.`);
    }
    const spec = (body.KeySpec ?? 'SYMMETRIC_DEFAULT') as KmsKeySpec;
    const usage = (body.KeyUsage ?? 'ENCRYPT_DECRYPT') as StandInKey['usage'];
    if (!KEY_SPECS.includes(spec)) {
      throw new AwsError('ValidationException', `1 validation error detected: Value '${spec}' at 'keySpec' failed to satisfy constraint`);
    }
    if (!['SIGN_VERIFY', 'ENCRYPT_DECRYPT'].includes(usage)) throw new AwsError('ValidationException', `invalid KeyUsage ${usage}`);
    if (spec === 'SYMMETRIC_DEFAULT' && usage !== 'ENCRYPT_DECRYPT') throw new AwsError('ValidationException', 'SYMMETRIC_DEFAULT keys are ENCRYPT_DECRYPT');
    if (spec.startsWith('ECC') && usage !== 'SIGN_VERIFY') throw new AwsError('ValidationException', 'ECC_NIST keys support SIGN_VERIFY only here');
    const id = randomUUID();
    const key: StandInKey = {
      id,
      arn: `arn:aws:kms:${this.region}:${this.account}:key/${id}`,
      spec,
      usage,
      state: 'Enabled',
      description: String(body.Description ?? ''),
      tags: (body.Tags as KeyTag[]) ?? [],
      created: Date.now() / 1000,
    };
    if (spec !== 'SYMMETRIC_DEFAULT') {
      const pair = spec.startsWith('ECC')
        ? generateKeyPairSync('ec', { namedCurve: spec === 'ECC_NIST_P256' ? 'P-256' : 'P-384' })
        : generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)) });
      key.privateKey = pair.privateKey;
      key.publicKey = pair.publicKey;
    }
    this.keys.set(id, key);
    return { KeyMetadata: this.metadata(key) };
  }

  describe(body: Record<string, unknown>): unknown {
    return { KeyMetadata: this.metadata(this.resolve(body.KeyId)) };
  }

  metadata(key: StandInKey): Record<string, unknown> {
    return {
      AWSAccountId: this.account,
      KeyId: key.id,
      Arn: key.arn,
      CreationDate: key.created,
      Enabled: key.state === 'Enabled',
      Description: key.description,
      KeyUsage: key.usage,
      KeyState: key.state,
      KeyManager: 'CUSTOMER',
      KeySpec: key.spec,
      CustomerMasterKeySpec: key.spec,
      Origin: 'AWS_KMS',
      DeletionDate: key.deletionDate,
      SigningAlgorithms: key.usage === 'SIGN_VERIFY' ? SIGNING_ALGORITHMS[key.spec] : undefined,
      EncryptionAlgorithms: key.usage === 'ENCRYPT_DECRYPT' ? ['SYMMETRIC_DEFAULT'] : undefined,
    };
  }

  /** Resolves a key id, key ARN, alias name or alias ARN like KMS does; `allowDisabled: false` also wants it Enabled. */
  resolve(keyId: unknown, opts: { allowDisabled?: boolean } = { allowDisabled: true }): StandInKey {
    if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > 2048) {
      throw new AwsError('ValidationException', "1 validation error detected: Value at 'keyId' failed to satisfy constraint");
    }
    let id = keyId;
    if (id.startsWith('arn:aws:kms:')) {
      const resource = id.split(':').slice(5).join(':');
      id = resource.startsWith('alias/') ? (this.aliases.get(resource) ?? '') : resource.replace(/^key\//, '');
    } else if (id.startsWith('alias/')) {
      id = this.aliases.get(id) ?? '';
    }
    const key = this.keys.get(id);
    if (!key) throw new AwsError('NotFoundException', `Key '${keyId}' does not exist`);
    if (!opts.allowDisabled && key.state !== 'Enabled') {
      if (key.state === 'Disabled') throw new AwsError('DisabledException', `${key.arn} is disabled.`);
      throw new AwsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
    return key;
  }

  getPublicKey(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId, { allowDisabled: false });
    if (!key.publicKey) throw new AwsError('UnsupportedOperationException', `${key.arn} key type is SYMMETRIC_DEFAULT which is not valid for GetPublicKey`);
    return {
      KeyId: key.arn,
      PublicKey: key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      KeySpec: key.spec,
      CustomerMasterKeySpec: key.spec,
      KeyUsage: key.usage,
      SigningAlgorithms: SIGNING_ALGORITHMS[key.spec],
    };
  }

  createAlias(body: Record<string, unknown>): unknown {
    const name = String(body.AliasName ?? '');
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(name) || name.startsWith('alias/aws/')) {
      throw new AwsError('ValidationException', `Alias ${name} is not valid`);
    }
    if (this.aliases.has(name)) throw new AwsError('AlreadyExistsException', `An alias with the name ${name} already exists`);
    const key = this.resolve(body.TargetKeyId);
    const { maxAliasesPerKey } = this.quotas();
    if ([...this.aliases.values()].filter((id) => id === key.id).length >= maxAliasesPerKey) {
      throw new AwsError('LimitExceededException', `The KMS key ${key.arn} already has the maximum of ${maxAliasesPerKey} aliases.`);
    }
    this.aliases.set(name, key.id);
    return {};
  }

  listAliases(body: Record<string, unknown>): unknown {
    const filterKey = body.KeyId === undefined ? undefined : this.resolve(body.KeyId).id;
    const aliases = [...this.aliases.entries()]
      .filter(([, id]) => !filterKey || id === filterKey)
      .map(([name, id]) => ({ AliasName: name, AliasArn: `arn:aws:kms:${this.region}:${this.account}:${name}`, TargetKeyId: id }));
    return { Aliases: aliases, Truncated: false };
  }

  scheduleDeletion(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId);
    const days = Number(body.PendingWindowInDays ?? 30);
    if (!Number.isInteger(days) || days < 7 || days > 30) throw new AwsError('ValidationException', 'PendingWindowInDays must be between 7 and 30');
    key.state = 'PendingDeletion';
    key.deletionDate = Date.now() / 1000 + days * 86400;
    return { KeyId: key.arn, DeletionDate: key.deletionDate, KeyState: key.state, PendingWindowInDays: days };
  }

  disable(body: Record<string, unknown>): unknown {
    this.resolve(body.KeyId, { allowDisabled: true }).state = 'Disabled';
    return {};
  }

  enable(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId, { allowDisabled: true });
    if (key.state === 'PendingDeletion') throw new AwsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    key.state = 'Enabled';
    return {};
  }
}
