import { createCipheriv, createDecipheriv, createPrivateKey, generateKeyPair, KeyObject, randomBytes, randomUUID, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { Clock } from '../../common/clock';
import { Errors } from '../../common/errors';
import { LocalKeyEntity } from '../../database/entities/local-key.entity';
import { TypeOrmTransactions } from '../../database/typeorm-transactions';
import { digestOf } from '../../pki/signing';
import { CreatedKey, KeyManager, NewKeyRequest, Signer } from '../key-manager';
import { KeySpec, signingAlgorithmFor } from '../key-spec';
import { HASH_SLICE_BYTES, signInSlices } from '../large-input';
import { SignerCache } from '../signer-cache';

const generateKeyPairAsync = promisify(generateKeyPair);
const signAsync = promisify(sign);

function keyPairOptions(spec: KeySpec): ['ec', { namedCurve: string }] | ['rsa', { modulusLength: number }] {
  switch (spec) {
    case 'EC_P256':
      return ['ec', { namedCurve: 'P-256' }];
    case 'EC_P384':
      return ['ec', { namedCurve: 'P-384' }];
    case 'RSA_2048':
      return ['rsa', { modulusLength: 2048 }];
    case 'RSA_3072':
      return ['rsa', { modulusLength: 3072 }];
    case 'RSA_4096':
      return ['rsa', { modulusLength: 4096 }];
  }
}

/**
 * The embedded key backend. Keys are generated with node:crypto; the PKCS #8 private key is sealed with
 * AES-256-GCM under the master key (the key id is the AAD, so a ciphertext cannot be moved to another
 * row) before it touches the database. Decrypted keys live only as opaque KeyObjects in this process.
 */
export class LocalKeyManager extends KeyManager {
  readonly backend = 'local' as const;
  private readonly signers = new SignerCache();

  constructor(
    private readonly masterKey: Buffer,
    private readonly db: TypeOrmTransactions,
    private readonly clock: Clock,
  ) {
    super();
  }

  async createKey({ spec, label }: NewKeyRequest): Promise<CreatedKey> {
    const [type, options] = keyPairOptions(spec);
    const { publicKey, privateKey } = await generateKeyPairAsync(type as 'ec', options as { namedCurve: string });
    const id = randomUUID();
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
    const row: LocalKeyEntity = {
      id,
      keySpec: spec,
      label: label.slice(0, 200),
      publicKeySpki: spki.toString('base64'),
      ciphertext: this.seal(id, pkcs8),
      createdAt: this.clock.now().toISOString(),
    };
    pkcs8.fill(0);
    // In a transaction of its own: on SQLite's single connection a bare write could otherwise join (and
    // roll back with) a transaction another request has open.
    await this.db.run(() => this.db.manager().insert(LocalKeyEntity, row));
    return { keyRef: id, spec, publicKeySpki: spki };
  }

  async adoptKey(): Promise<CreatedKey> {
    throw Errors.validation('kmsKeyId applies only to keyBackend "aws-kms"; local keys are always generated here');
  }

  async discardKey(keyRef: string): Promise<void> {
    this.signers.delete(keyRef);
    await this.db.run(() => this.db.manager().delete(LocalKeyEntity, { id: keyRef }));
  }

  signer(keyRef: string, spec: KeySpec): Promise<Signer> {
    return this.signers.get(keyRef, () => this.loadSigner(keyRef, spec));
  }

  /** The key decrypts under the master key (done once; the signer is cached). */
  async checkKey(keyRef: string, spec: KeySpec): Promise<void> {
    await this.signer(keyRef, spec);
  }

  private async loadSigner(keyRef: string, spec: KeySpec): Promise<Signer> {
    const row = await this.db.manager().findOneBy(LocalKeyEntity, { id: keyRef });
    if (!row) throw Errors.keyBackendUnavailable('the authority key is missing from the local key store');
    if (row.keySpec !== spec) throw Errors.keyBackendUnavailable('the authority key does not match its recorded spec');
    const privateKey: KeyObject = createPrivateKey({ key: this.unseal(row.id, row.ciphertext), format: 'der', type: 'pkcs8' });
    const spki = Buffer.from(row.publicKeySpki, 'base64');
    const algorithm = signingAlgorithmFor(spec);
    const digest = digestOf(algorithm);
    return {
      algorithm,
      publicKeySpki: () => spki,
      // ECDSA output is DER (node's default dsaEncoding), RSA is PKCS #1 v1.5 (the default padding).
      sign: (data: Buffer) => (data.length > HASH_SLICE_BYTES ? signInSlices(digest, data, privateKey) : signAsync(digest, data, privateKey)),
    };
  }

  private seal(id: string, plaintext: Buffer): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv, { authTagLength: 16 });
    cipher.setAAD(Buffer.from(id));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64');
  }

  private unseal(id: string, sealed: string): Buffer {
    const bytes = Buffer.from(sealed, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.masterKey, bytes.subarray(0, 12), { authTagLength: 16 });
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(bytes.subarray(12, 28));
      return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]);
    } catch {
      // Wrong master key or tampered row. Say which, never anything about the bytes.
      throw Errors.keyBackendUnavailable('the local key store cannot decrypt CA keys: wrong FLEET_PKI_MASTER_KEY?');
    }
  }
}
