import { constants, createHash, createPublicKey, generateKeyPairSync, KeyObject, privateEncrypt, publicDecrypt, randomUUID, verify } from 'node:crypto';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { p256, p384 } from '@noble/curves/nist.js';

/**
 * A local stand-in for AWS KMS that speaks its wire protocol (AWS JSON 1.1: `POST /` with
 * `X-Amz-Target: TrentService.<Operation>`, errors as `{"__type", "message"}`), so the real
 * @aws-sdk/client-kms can be pointed at it with an endpoint override. It validates like KMS: key usage,
 * key state, algorithm against key spec, digest length. SigV4 signatures are not checked.
 *
 * Knobs (constructor or `POST /_standin/config`): added latency, a token-bucket rate above which calls get
 * ThrottlingException, a random throttle probability, failure modes (HTTP 500 or dropped connections), the resource
 * quotas behind LimitExceededException (keys per account, aliases per key), and the eventual consistency of tag-based
 * authorization on a new key (`tagAuthorizationDelayMs`).
 */
export interface KmsStandInKnobs {
  latencyMs: number;
  /** Sustained requests per second before ThrottlingException; 0 = unlimited. */
  tps: number;
  /** Token-bucket capacity (requests allowed at once after a quiet spell); defaults to one second of tps. */
  burst?: number;
  /** Probability in [0, 1] that any call is throttled regardless of rate. */
  throttleProbability: number;
  failureMode: 'none' | 'http500' | 'drop';
  /**
   * Tag-based authorization propagating: for this many ms after CreateKey, the `tagConditionedOperations` on a key
   * created with tags answer AccessDeniedException, as AWS KMS does while a policy condition on
   * `aws:ResourceTag/...` cannot see the new key's tags yet ("It might take up to five minutes for tag and alias
   * changes to affect KMS key authorization"). Keys created without tags (adopted ones, say) are taken to be
   * authorized by their key policy and are not affected. 0 = off.
   */
  tagAuthorizationDelayMs: number;
  /** The operations the simulated IAM policy allows only on tagged keys (default Sign, GetPublicKey, DescribeKey). */
  tagConditionedOperations: string[];
  /** Customer managed keys per account and region before CreateKey answers LimitExceededException (AWS default 100,000). */
  maxKeys: number;
  /** Aliases per key before CreateAlias answers LimitExceededException (AWS default 50). */
  maxAliasesPerKey: number;
  /** Operations the simulated IAM policy never allows (AccessDeniedException on every call): a missing permission. */
  deniedOperations: string[];
}

type KmsKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'SYMMETRIC_DEFAULT';
type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

interface StandInKey {
  id: string;
  arn: string;
  spec: KmsKeySpec;
  usage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT';
  state: KeyState;
  description: string;
  tags: { TagKey: string; TagValue: string }[];
  created: number;
  deletionDate?: number;
  privateKey?: KeyObject;
  publicKey?: KeyObject;
}

const ALGORITHMS: Record<string, string[]> = {
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  ECC_NIST_P384: ['ECDSA_SHA_384'],
  RSA_2048: ['RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512', 'RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512'],
};
ALGORITHMS.RSA_3072 = ALGORITHMS.RSA_2048;
ALGORITHMS.RSA_4096 = ALGORITHMS.RSA_2048;

const HASH_OF: Record<string, { name: string; length: number }> = {
  ECDSA_SHA_256: { name: 'sha256', length: 32 },
  ECDSA_SHA_384: { name: 'sha384', length: 48 },
  RSASSA_PKCS1_V1_5_SHA_256: { name: 'sha256', length: 32 },
  RSASSA_PKCS1_V1_5_SHA_384: { name: 'sha384', length: 48 },
  RSASSA_PKCS1_V1_5_SHA_512: { name: 'sha512', length: 64 },
};

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1) for PKCS #1 v1.5 signatures over a digest. */
const DIGEST_INFO: Record<string, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    /** The JSON member the message goes in: KMS's modelled errors use `message`, IAM's AccessDeniedException `Message`. */
    readonly messageMember: 'message' | 'Message' = 'message',
  ) {
    super(message);
  }
}

export class KmsStandIn {
  readonly region = 'us-east-1';
  readonly account = '111122223333';
  knobs: KmsStandInKnobs;
  /** Calls by operation, including refused ones (for tests and benchmarks). */
  readonly calls = new Map<string, number>();
  throttled = 0;
  /** AccessDeniedException answers given while a new key's tags were not yet visible to authorization. */
  deniedWhilePropagating = 0;
  /** Test hook: told when a Sign request starts waiting out the latency and when it is answered. */
  onSign?: (phase: 'start' | 'end') => void;
  private readonly keys = new Map<string, StandInKey>();
  private readonly aliases = new Map<string, string>();
  private server?: http.Server;
  private tokens = 0;
  private lastRefill = Date.now();

  constructor(knobs: Partial<KmsStandInKnobs> = {}) {
    this.knobs = {
      latencyMs: 0,
      tps: 0,
      throttleProbability: 0,
      failureMode: 'none',
      tagAuthorizationDelayMs: 0,
      tagConditionedOperations: ['Sign', 'GetPublicKey', 'DescribeKey'],
      maxKeys: 100_000,
      maxAliasesPerKey: 50,
      deniedOperations: [],
      ...knobs,
    };
    this.tokens = this.capacity();
  }

  private capacity(): number {
    return this.knobs.burst ?? this.knobs.tps;
  }

  get endpoint(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  configure(knobs: Partial<KmsStandInKnobs>): void {
    this.knobs = { ...this.knobs, ...knobs };
    this.tokens = Math.min(this.tokens, this.capacity());
  }

  /** Test hook: the private key of a stand-in key as PKCS #8 DER and its raw secret (EC d / RSA d). */
  exportPrivateKey(keyId: string): { pkcs8: Buffer; secret: Buffer } {
    const key = this.resolve(keyId);
    const jwk = key.privateKey!.export({ format: 'jwk' });
    return { pkcs8: key.privateKey!.export({ type: 'pkcs8', format: 'der' }), secret: Buffer.from(jwk.d!, 'base64url') };
  }

  keyIds(): string[] {
    return [...this.keys.keys()];
  }

  /** A key's state and tags by id, key ARN or alias (test hook); undefined when there is no such key. */
  keyState(keyId: string): { arn: string; state: KeyState; tags: { TagKey: string; TagValue: string }[]; deletionDate?: number } | undefined {
    try {
      const key = this.resolve(keyId);
      return { arn: key.arn, state: key.state, tags: key.tags.map((t) => ({ ...t })), deletionDate: key.deletionDate };
    } catch {
      return undefined;
    }
  }

  /** Every key the stand-in holds with a tag of this key (the keys a service made for its authorities). */
  keysTagged(tagKey: string): { arn: string; state: KeyState; tagValue: string }[] {
    return [...this.keys.values()]
      .filter((key) => key.tags.some((t) => t.TagKey === tagKey))
      .map((key) => ({ arn: key.arn, state: key.state, tagValue: key.tags.find((t) => t.TagKey === tagKey)!.TagValue }));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');

    if (req.url === '/_standin/stats' && req.method === 'GET') {
      this.refill();
      const stats = {
        throttled: this.throttled,
        deniedWhilePropagating: this.deniedWhilePropagating,
        calls: Object.fromEntries(this.calls),
        tokens: this.knobs.tps > 0 ? this.tokens : null,
      };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    if (req.url === '/_standin/config' && req.method === 'POST') {
      this.configure(JSON.parse(raw || '{}') as Partial<KmsStandInKnobs>);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(this.knobs));
      return;
    }

    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '';
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);

    if (operation === 'Sign') this.onSign?.('start');
    res.once('close', () => operation === 'Sign' && this.onSign?.('end'));
    if (this.knobs.latencyMs > 0) await new Promise((r) => setTimeout(r, this.knobs.latencyMs));
    if (this.knobs.failureMode === 'drop') {
      req.socket.destroy();
      return;
    }
    try {
      if (this.knobs.failureMode === 'http500') throw new KmsError('KMSInternalException', 'The request was rejected because an internal exception occurred.', 500);
      if (req.method !== 'POST' || !operation) throw new KmsError('UnknownOperationException', 'Unknown operation');
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
        throw new KmsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1');
      }
      if (!req.headers.authorization) throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
      this.throttle();
      const body = JSON.parse(raw || '{}') as Record<string, unknown>;
      const result = this.dispatch(operation, body);
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': randomUUID() }).end(JSON.stringify(result));
    } catch (err) {
      const error = err instanceof KmsError ? err : new KmsError('KMSInternalException', String(err), 500);
      res
        .writeHead(error.status, { 'Content-Type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': randomUUID() })
        .end(JSON.stringify({ __type: error.type, [error.messageMember]: error.message }));
    }
  }

  private throttle(): void {
    if (this.knobs.throttleProbability > 0 && Math.random() < this.knobs.throttleProbability) {
      this.throttled++;
      throw new KmsError('ThrottlingException', 'Rate exceeded');
    }
    if (this.knobs.tps <= 0) return;
    this.refill();
    if (this.tokens < 1) {
      this.throttled++;
      throw new KmsError('ThrottlingException', 'Rate exceeded');
    }
    this.tokens -= 1;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.lastRefill) / 1000) * this.knobs.tps);
    this.lastRefill = now;
  }

  private dispatch(operation: string, body: Record<string, unknown>): unknown {
    this.authorize(operation, body);
    switch (operation) {
      case 'CreateKey':
        return this.createKey(body);
      case 'DescribeKey':
        return { KeyMetadata: this.metadata(this.resolve(body.KeyId)) };
      case 'GetPublicKey':
        return this.getPublicKey(body);
      case 'Sign':
        return this.sign(body);
      case 'Verify':
        return this.verify(body);
      case 'CreateAlias':
        return this.createAlias(body);
      case 'ListAliases':
        return this.listAliases(body);
      case 'ScheduleKeyDeletion':
        return this.scheduleKeyDeletion(body);
      case 'DisableKey':
        this.resolve(body.KeyId, { allowDisabled: true }).state = 'Disabled';
        return {};
      case 'EnableKey': {
        const key = this.resolve(body.KeyId, { allowDisabled: true });
        if (key.state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
        key.state = 'Enabled';
        return {};
      }
      default:
        throw new KmsError('UnknownOperationException', `${operation} is not supported by the stand-in`);
    }
  }

  /**
   * The simulated IAM policy: the tag-conditioned operations on a tagged key are denied until its tags have
   * "propagated" (tagAuthorizationDelayMs after CreateKey). AWS answers HTTP 400 with
   * `{"__type": "AccessDeniedException", "Message": "User: <caller> is not authorized to perform: kms:<Op> on resource:
   * <key ARN> because no identity-based policy allows the kms:<Op> action"}`.
   */
  private authorize(operation: string, body: Record<string, unknown>): void {
    if (this.knobs.deniedOperations.includes(operation)) {
      throw new KmsError(
        'AccessDeniedException',
        `User: arn:aws:sts::${this.account}:assumed-role/fleet-pki/standin is not authorized to perform: kms:${operation} on resource: ${String(body.AliasName ?? body.KeyId ?? '*')} because no identity-based policy allows the kms:${operation} action`,
        400,
        'Message',
      );
    }
    if (this.knobs.tagAuthorizationDelayMs <= 0 || !this.knobs.tagConditionedOperations.includes(operation)) return;
    let key: StandInKey;
    try {
      key = this.resolve(body.KeyId);
    } catch {
      return; // the operation itself reports a missing key
    }
    if (key.tags.length === 0 || Date.now() - key.created * 1000 >= this.knobs.tagAuthorizationDelayMs) return;
    this.deniedWhilePropagating++;
    throw new KmsError(
      'AccessDeniedException',
      `User: arn:aws:sts::${this.account}:assumed-role/fleet-pki/standin is not authorized to perform: kms:${operation} on resource: ${key.arn} because no identity-based policy allows the kms:${operation} action`,
      400,
      'Message',
    );
  }

  private createKey(body: Record<string, unknown>): unknown {
    if (this.keys.size >= this.knobs.maxKeys) {
      throw new KmsError('LimitExceededException', `You have reached the quota of ${this.knobs.maxKeys} customer managed KMS keys in this account and Region.`);
    }
    const spec = (body.KeySpec ?? 'SYMMETRIC_DEFAULT') as KmsKeySpec;
    const usage = (body.KeyUsage ?? 'ENCRYPT_DECRYPT') as StandInKey['usage'];
    if (!['ECC_NIST_P256', 'ECC_NIST_P384', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'SYMMETRIC_DEFAULT'].includes(spec)) {
      throw new KmsError('ValidationException', `1 validation error detected: Value '${spec}' at 'keySpec' failed to satisfy constraint`);
    }
    if (!['SIGN_VERIFY', 'ENCRYPT_DECRYPT'].includes(usage)) throw new KmsError('ValidationException', `invalid KeyUsage ${usage}`);
    if (spec === 'SYMMETRIC_DEFAULT' && usage !== 'ENCRYPT_DECRYPT') throw new KmsError('ValidationException', 'SYMMETRIC_DEFAULT keys are ENCRYPT_DECRYPT');
    if (spec.startsWith('ECC') && usage !== 'SIGN_VERIFY') throw new KmsError('ValidationException', 'ECC_NIST keys support SIGN_VERIFY only here');
    const id = randomUUID();
    const key: StandInKey = {
      id,
      arn: `arn:aws:kms:${this.region}:${this.account}:key/${id}`,
      spec,
      usage,
      state: 'Enabled',
      description: String(body.Description ?? ''),
      tags: (body.Tags as StandInKey['tags']) ?? [],
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

  private metadata(key: StandInKey): Record<string, unknown> {
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
      SigningAlgorithms: key.usage === 'SIGN_VERIFY' ? ALGORITHMS[key.spec] : undefined,
      EncryptionAlgorithms: key.usage === 'ENCRYPT_DECRYPT' ? ['SYMMETRIC_DEFAULT'] : undefined,
    };
  }

  /** Resolves a key id, key ARN, alias name or alias ARN like KMS does. */
  private resolve(keyId: unknown, opts: { allowDisabled?: boolean } = { allowDisabled: true }): StandInKey {
    if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > 2048) {
      throw new KmsError('ValidationException', "1 validation error detected: Value at 'keyId' failed to satisfy constraint");
    }
    let id = keyId;
    if (id.startsWith('arn:aws:kms:')) {
      const resource = id.split(':').slice(5).join(':');
      id = resource.startsWith('alias/') ? (this.aliases.get(resource) ?? '') : resource.replace(/^key\//, '');
    } else if (id.startsWith('alias/')) {
      id = this.aliases.get(id) ?? '';
    }
    const key = this.keys.get(id);
    if (!key) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
    if (!opts.allowDisabled && key.state !== 'Enabled') {
      if (key.state === 'Disabled') throw new KmsError('DisabledException', `${key.arn} is disabled.`);
      throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
    return key;
  }

  private getPublicKey(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId, { allowDisabled: false });
    if (!key.publicKey) throw new KmsError('UnsupportedOperationException', `${key.arn} key type is SYMMETRIC_DEFAULT which is not valid for GetPublicKey`);
    return {
      KeyId: key.arn,
      PublicKey: key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      KeySpec: key.spec,
      CustomerMasterKeySpec: key.spec,
      KeyUsage: key.usage,
      SigningAlgorithms: ALGORITHMS[key.spec],
    };
  }

  private signingInput(key: StandInKey, body: Record<string, unknown>): { algorithm: string; digest: Buffer; hash: string } {
    if (key.usage !== 'SIGN_VERIFY' || !key.privateKey) {
      throw new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.usage} which is not valid for Sign.`);
    }
    const algorithm = String(body.SigningAlgorithm ?? '');
    if (!ALGORITHMS[key.spec].includes(algorithm)) {
      throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.spec}.`);
    }
    const hash = HASH_OF[algorithm];
    if (!hash) throw new KmsError('ValidationException', `the stand-in does not implement ${algorithm}`);
    const message = Buffer.from(String(body.Message ?? ''), 'base64');
    if (message.length === 0 || message.length > 4096) {
      throw new KmsError('ValidationException', "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and 4096");
    }
    const messageType = body.MessageType ?? 'RAW';
    if (messageType === 'DIGEST') {
      if (message.length !== hash.length) {
        throw new KmsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
      }
      return { algorithm, digest: message, hash: hash.name };
    }
    if (messageType !== 'RAW') throw new KmsError('ValidationException', `invalid MessageType ${String(messageType)}`);
    return { algorithm, digest: createHash(hash.name).update(message).digest(), hash: hash.name };
  }

  private sign(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId, { allowDisabled: false });
    const { algorithm, digest, hash } = this.signingInput(key, body);
    let signature: Buffer;
    if (key.spec.startsWith('ECC')) {
      const secret = Buffer.from(key.privateKey!.export({ format: 'jwk' }).d!, 'base64url');
      const curve = key.spec === 'ECC_NIST_P256' ? p256 : p384;
      // KMS returns ECDSA signatures DER-encoded (RFC 3279), as X.509 wants them.
      signature = Buffer.from(curve.sign(digest, secret, { prehash: false, format: 'der' }));
    } else {
      signature = privateEncrypt({ key: key.privateKey!, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), digest]));
    }
    return { KeyId: key.arn, Signature: signature.toString('base64'), SigningAlgorithm: algorithm };
  }

  private verify(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId, { allowDisabled: false });
    const { algorithm, digest, hash } = this.signingInput(key, body);
    const signature = Buffer.from(String(body.Signature ?? ''), 'base64');
    let valid: boolean;
    if (key.spec.startsWith('ECC')) {
      const curve = key.spec === 'ECC_NIST_P256' ? p256 : p384;
      const point = createPublicKey(key.publicKey!).export({ format: 'jwk' });
      const publicKey = Buffer.concat([Buffer.from([4]), Buffer.from(point.x!, 'base64url'), Buffer.from(point.y!, 'base64url')]);
      valid = curve.verify(signature, digest, publicKey, { prehash: false, format: 'der' });
    } else {
      const message = body.MessageType === 'DIGEST' ? undefined : Buffer.from(String(body.Message), 'base64');
      valid = message ? verify(hash, message, key.publicKey!, signature) : false;
      if (!message) {
        // Verify over a digest: recover the DigestInfo and compare.
        try {
          const info = publicDecrypt({ key: key.publicKey!, padding: constants.RSA_PKCS1_PADDING }, signature);
          valid = info.equals(Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), digest]));
        } catch {
          valid = false;
        }
      }
    }
    if (!valid) throw new KmsError('KMSInvalidSignatureException', 'The signature is not valid.');
    return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: algorithm };
  }

  private createAlias(body: Record<string, unknown>): unknown {
    const name = String(body.AliasName ?? '');
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(name) || name.startsWith('alias/aws/')) {
      throw new KmsError('ValidationException', `Alias ${name} is not valid`);
    }
    if (this.aliases.has(name)) throw new KmsError('AlreadyExistsException', `An alias with the name ${name} already exists`);
    const key = this.resolve(body.TargetKeyId);
    if ([...this.aliases.values()].filter((id) => id === key.id).length >= this.knobs.maxAliasesPerKey) {
      throw new KmsError('LimitExceededException', `The KMS key ${key.arn} already has the maximum of ${this.knobs.maxAliasesPerKey} aliases.`);
    }
    this.aliases.set(name, key.id);
    return {};
  }

  private listAliases(body: Record<string, unknown>): unknown {
    const filterKey = body.KeyId === undefined ? undefined : this.resolve(body.KeyId).id;
    const aliases = [...this.aliases.entries()]
      .filter(([, id]) => !filterKey || id === filterKey)
      .map(([name, id]) => ({ AliasName: name, AliasArn: `arn:aws:kms:${this.region}:${this.account}:${name}`, TargetKeyId: id }));
    return { Aliases: aliases, Truncated: false };
  }

  private scheduleKeyDeletion(body: Record<string, unknown>): unknown {
    const key = this.resolve(body.KeyId);
    const days = Number(body.PendingWindowInDays ?? 30);
    if (!Number.isInteger(days) || days < 7 || days > 30) throw new KmsError('ValidationException', 'PendingWindowInDays must be between 7 and 30');
    key.state = 'PendingDeletion';
    key.deletionDate = Date.now() / 1000 + days * 86400;
    return { KeyId: key.arn, DeletionDate: key.deletionDate, KeyState: key.state, PendingWindowInDays: days };
  }
}
