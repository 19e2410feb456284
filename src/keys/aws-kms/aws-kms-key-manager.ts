import * as http from 'node:http';
import * as https from 'node:https';
import { Logger } from '@nestjs/common';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  GetPublicKeyCommand,
  KeySpec as KmsKeySpec,
  KMSClient,
  ScheduleKeyDeletionCommand,
  SignCommand,
} from '@aws-sdk/client-kms';
import { AdaptiveRetryStrategy, DefaultRateLimiter, StandardRetryStrategy } from '@smithy/core/retry';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Clock } from '../../common/clock';
import { HardLimitsNotRetried } from '../../common/aws-retry';
import { DomainError, Errors } from '../../common/errors';
import { LocalPacing, Pacer, Pacing } from '../../common/pacing';
import { Semaphore } from '../../common/semaphore';
import { KmsConfig } from '../../config/config';
import { digestOf } from '../../pki/signing';
import { abandonNewKey, CreatedKey, KeyManager, NewKeyRequest, Signer } from '../key-manager';
import { KeySpec, signingAlgorithmFor } from '../key-spec';
import { digestInSlices } from '../large-input';
import { SignerCache } from '../signer-cache';
import { kmsDomainError } from './kms-errors';

const TO_KMS: Record<KeySpec, KmsKeySpec> = {
  EC_P256: 'ECC_NIST_P256',
  EC_P384: 'ECC_NIST_P384',
  RSA_2048: 'RSA_2048',
  RSA_3072: 'RSA_3072',
  RSA_4096: 'RSA_4096',
};
const FROM_KMS = Object.fromEntries(Object.entries(TO_KMS).map(([ours, theirs]) => [theirs, ours])) as Record<string, KeySpec>;

export const AUTHORITY_TAG = 'fleet-pki:authority-id';

/**
 * What KMS may answer about a key it has just created, for a while: AccessDeniedException while a permission that
 * depends on the key's tag has not reached every KMS host ("It might take up to five minutes for tag and alias changes
 * to affect KMS key authorization", https://docs.aws.amazon.com/kms/latest/developerguide/alias-authorization.html),
 * NotFoundException while the key itself has not (the KMS API is eventually consistent: a change typically propagates
 * within a few seconds, sometimes several minutes, and a call right after CreateKey may get NotFoundException,
 * https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html). See
 * docs/aws-behaviours.md.
 */
const NOT_YET_CONSISTENT: ReadonlySet<string> = new Set(['AccessDeniedException', 'NotFoundException']);
/** A probe does not wait (see `call`), but still reports a new key's not-yet-consistent answers as such. */
const NO_WAIT: ReadonlySet<string> = new Set();
/**
 * CreateAlias's permission (kms:CreateAlias on the key and on the alias) has no tag condition in our policy
 * (docs/iam/fleet-pki-service-policy.json): an AccessDeniedException there is a missing permission, not propagation,
 * so only NotFoundException (the new key not yet visible) is waited out.
 */
const NOT_YET_CONSISTENT_FOR_ALIAS = new Set(['NotFoundException']);
/** Keys made here are remembered this long (for the clean-up's wait), then forgotten. */
const NEW_KEY_MEMORY_MS = 15 * 60_000;
/**
 * The least time the clean-up of a failed creation (ScheduleKeyDeletion) may wait for KMS to become consistent, when
 * the creation used up (nearly) all of KMS_NEW_KEY_AUTH_WAIT_MS: a failed creation takes at most that wait plus this.
 */
const DISCARD_WAIT_FLOOR_MS = 2000;

export function kmsClient(config: KmsConfig): KMSClient {
  const agentOptions = { keepAlive: true, maxSockets: 256 };
  return new KMSClient({
    region: config.region,
    endpoint: config.endpoint,
    // Adaptive mode slows the client when KMS throttles; its floor (KMS_ADAPTIVE_MIN_TPS) keeps a burst of
    // throttles from collapsing signing to the library default of half a request per second. A LimitExceededException
    // (a resource quota) is neither retried nor taken for throttling.
    retryStrategy: new HardLimitsNotRetried(
      config.retryMode === 'adaptive'
        ? new AdaptiveRetryStrategy(config.maxAttempts, { rateLimiter: new DefaultRateLimiter({ minFillRate: config.adaptiveMinTps }) })
        : new StandardRetryStrategy(config.maxAttempts),
    ),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: Math.min(config.requestTimeoutMs, 3000),
      requestTimeout: config.requestTimeoutMs,
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
    }),
  });
}

/**
 * The aws-kms key backend. Private keys are made in KMS (KeyUsage SIGN_VERIFY) and never leave it: we keep
 * the key ARN and the public key, and send KMS only SHA-2 digests to sign (MessageType DIGEST). KMS returns
 * ECDSA signatures as DER and RSA ones as PKCS #1 bytes, exactly what X.509 needs.
 */
export class AwsKmsKeyManager extends KeyManager {
  readonly backend = 'aws-kms' as const;
  private readonly logger = new Logger('KMS');
  private readonly signers = new SignerCache();
  private readonly limits = new Map<string, Semaphore>();
  private readonly readiness = new Map<string, { checkedAt: number; error?: DomainError }>();
  /**
   * Paces Sign across all keys: the KMS quota is per account and region, not per key. The budget `kms:<region>:Sign`
   * holds across replicas on PostgreSQL (docs/limits.md, "Replica-wide budgets").
   */
  private readonly signRate?: Pacer;
  /**
   * Keys this process created, by ARN → when KMS gave them (the injected Clock, ms). Calls on such a key within
   * KMS_NEW_KEY_AUTH_WAIT_MS of that wait out NOT_YET_CONSISTENT answers (see `call`).
   */
  private readonly newKeys = new Map<string, number>();

  constructor(
    private readonly client: KMSClient,
    private readonly config: KmsConfig,
    private readonly clock: Clock,
    pacing: Pacing = new LocalPacing(),
  ) {
    super();
    if (config.maxSignRate > 0) this.signRate = pacing.pacer(`kms:${config.region}:Sign`, config.maxSignRate);
  }

  async createKey({ spec, authorityId, label }: NewKeyRequest): Promise<CreatedKey> {
    const created = await this.call('CreateKey', '(new key)', () =>
      this.client.send(
        new CreateKeyCommand({
          KeyUsage: 'SIGN_VERIFY',
          KeySpec: TO_KMS[spec],
          Description: label.slice(0, 8192),
          Tags: [{ TagKey: AUTHORITY_TAG, TagValue: authorityId }],
        }),
      ),
    );
    const keyRef = created.KeyMetadata?.Arn;
    if (!keyRef) throw Errors.keyBackendUnavailable('AWS KMS CreateKey returned no key ARN');
    this.rememberNewKey(keyRef);
    try {
      const aliasName = `${this.config.aliasPrefix}${authorityId}`;
      await this.call(
        'CreateAlias',
        keyRef,
        () =>
          this.client.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: keyRef })).catch((err: unknown) => {
            if ((err as Error)?.name !== 'AccessDeniedException') throw err;
            // A missing permission, not propagation: at once, and saying so.
            this.logger.warn(`KMS CreateAlias ${aliasName} for new key ${keyRef.slice(0, 200)}: AccessDeniedException: ${(err as Error).message}`);
            throw Errors.keyBackendUnavailable(
              `AWS KMS refused CreateAlias (AccessDeniedException): the IAM policy does not allow kms:CreateAlias on ${aliasName} and on the new key. ` +
                "This permission does not depend on the key's tag, so waiting does not help: fix the policy (docs/aws-setup.md, docs/iam/fleet-pki-service-policy.json)",
            );
          }),
        NOT_YET_CONSISTENT_FOR_ALIAS,
      );
      const publicKeySpki = await this.publicKey(keyRef, spec);
      this.signers.set(keyRef, this.makeSigner(keyRef, spec, publicKeySpki));
      return { keyRef, spec, publicKeySpki };
    } catch (err) {
      // No stray key: scheduled for deletion, and the error says so.
      throw await abandonNewKey(this, keyRef, err, (line) => this.logger.warn(line));
    }
  }

  async adoptKey(externalId: string): Promise<CreatedKey> {
    const described = await this.call('DescribeKey', externalId, () => this.client.send(new DescribeKeyCommand({ KeyId: externalId }))).catch((err: unknown) => {
      // At adoption a missing key is a bad request, not a broken authority.
      if (err instanceof DomainError && err.code === 'AUTHORITY_KEY_UNUSABLE') throw Errors.kmsKeyNotSuitable('the KMS key does not exist or is not visible to this service');
      throw err;
    });
    const metadata = described.KeyMetadata;
    if (!metadata?.Arn) throw Errors.keyBackendUnavailable('AWS KMS DescribeKey returned no key metadata');
    if (metadata.KeyUsage !== 'SIGN_VERIFY') {
      throw Errors.kmsKeyNotSuitable(`the KMS key has KeyUsage ${metadata.KeyUsage}; a CA key needs SIGN_VERIFY`);
    }
    const spec = FROM_KMS[metadata.KeySpec ?? ''];
    if (!spec) throw Errors.kmsKeyNotSuitable(`the KMS key is ${metadata.KeySpec}; use one of ${Object.values(TO_KMS).join(', ')}`);
    if (metadata.KeyState !== 'Enabled') {
      throw Errors.authorityKeyUnusable(`the KMS key is ${metadata.KeyState}; enable it first`);
    }
    const publicKeySpki = await this.publicKey(metadata.Arn, spec);
    this.signers.set(metadata.Arn, this.makeSigner(metadata.Arn, spec, publicKeySpki));
    return { keyRef: metadata.Arn, spec, publicKeySpki };
  }

  /**
   * ScheduleKeyDeletion with the minimum waiting period (7 days; CancelKeyDeletion undoes it meanwhile). A key made
   * here may wait, in case the permission depends on its tag too, for what is left of its KMS_NEW_KEY_AUTH_WAIT_MS but
   * at least DISCARD_WAIT_FLOOR_MS (no fresh window: the request has already waited), so a failed creation holds its
   * request for at most KMS_NEW_KEY_AUTH_WAIT_MS + 2 s.
   */
  async discardKey(keyRef: string): Promise<string> {
    this.signers.delete(keyRef);
    const since = this.newKeys.get(keyRef);
    if (since !== undefined) {
      const wait = this.config.newKeyAuthWaitMs;
      const left = Math.max(this.newKeyWaitLeft(keyRef), Math.min(DISCARD_WAIT_FLOOR_MS, wait));
      this.newKeys.set(keyRef, this.clock.now().getTime() + left - wait);
    }
    await this.call('ScheduleKeyDeletion', keyRef, () => this.client.send(new ScheduleKeyDeletionCommand({ KeyId: keyRef, PendingWindowInDays: 7 })));
    this.newKeys.delete(keyRef);
    return 'the new KMS key was scheduled for deletion (7-day waiting period)';
  }

  signer(keyRef: string, spec: KeySpec): Promise<Signer> {
    return this.signers.get(keyRef, () => this.loadSigner(keyRef, spec));
  }

  /** DescribeKey, trusted for KMS_READY_CACHE_SECONDS, so /readyz does not cost a KMS call per probe. */
  async checkKey(keyRef: string): Promise<void> {
    const now = this.clock.now().getTime();
    const cached = this.readiness.get(keyRef);
    if (!cached || now - cached.checkedAt >= this.config.readyCacheSeconds * 1000) {
      let error: DomainError | undefined;
      try {
        // A probe does not wait for a new key's authorization to settle (see `call`).
        const described = await this.call('DescribeKey', keyRef, () => this.client.send(new DescribeKeyCommand({ KeyId: keyRef })), NO_WAIT);
        if (described.KeyMetadata?.KeyState !== 'Enabled') {
          error = Errors.authorityKeyUnusable(`KMS key is ${described.KeyMetadata?.KeyState ?? 'in an unknown state'}`);
        }
      } catch (err) {
        // A key made here moments ago has just proved itself (GetPublicKey, Sign): a DescribeKey refused while its
        // tag-based authorization settles says nothing about its health. Not cached, so the next probe asks again.
        if (err instanceof DomainError && err.code === 'KMS_NEW_KEY_NOT_AUTHORIZED') return;
        error = err instanceof DomainError ? err : Errors.keyBackendUnavailable('AWS KMS is unreachable');
      }
      this.readiness.set(keyRef, { checkedAt: now, error });
    }
    const error = this.readiness.get(keyRef)!.error;
    if (error) throw error;
  }

  private async loadSigner(keyRef: string, spec: KeySpec): Promise<Signer> {
    return this.makeSigner(keyRef, spec, await this.publicKey(keyRef, spec));
  }

  private makeSigner(keyRef: string, spec: KeySpec, spki: Buffer): Signer {
    const algorithm = signingAlgorithmFor(spec);
    const digest = digestOf(algorithm);
    let limit = this.limits.get(keyRef);
    if (!limit) {
      limit = new Semaphore(this.config.maxConcurrencyPerKey);
      this.limits.set(keyRef, limit);
    }
    const semaphore = limit;
    return {
      algorithm,
      publicKeySpki: () => spki,
      sign: async (data: Buffer) => {
        const message = await digestInSlices(digest, data);
        const result = await semaphore.run(async () => {
          await this.signRate?.acquire();
          return this.call('Sign', keyRef, () =>
            this.client.send(new SignCommand({ KeyId: keyRef, Message: message, MessageType: 'DIGEST', SigningAlgorithm: algorithm })),
          );
        });
        if (!result.Signature) throw Errors.keyBackendUnavailable('AWS KMS Sign returned no signature');
        return Buffer.from(result.Signature);
      },
    };
  }

  /** GetPublicKey (SPKI DER), checked against the spec we expect; done once per key and cached with the signer. */
  private async publicKey(keyRef: string, spec: KeySpec): Promise<Buffer> {
    const result = await this.call('GetPublicKey', keyRef, () => this.client.send(new GetPublicKeyCommand({ KeyId: keyRef })));
    if (!result.PublicKey) throw Errors.keyBackendUnavailable('AWS KMS GetPublicKey returned no key');
    if (result.KeySpec !== TO_KMS[spec]) {
      throw Errors.authorityKeyUnusable(`KMS key is ${result.KeySpec}, but the authority records ${TO_KMS[spec]}`);
    }
    if (result.KeyUsage !== 'SIGN_VERIFY') throw Errors.authorityKeyUnusable(`KMS key usage is ${result.KeyUsage}, not SIGN_VERIFY`);
    return Buffer.from(result.PublicKey);
  }

  private rememberNewKey(keyRef: string): void {
    const now = this.clock.now().getTime();
    for (const [ref, since] of this.newKeys) if (now - since > NEW_KEY_MEMORY_MS) this.newKeys.delete(ref);
    this.newKeys.set(keyRef, now);
  }

  /** Milliseconds left in which a call on this key may still wait for KMS to become consistent (0: none). */
  private newKeyWaitLeft(keyRef: string): number {
    const since = this.newKeys.get(keyRef);
    return since === undefined ? 0 : Math.max(0, since + this.config.newKeyAuthWaitMs - this.clock.now().getTime());
  }

  /**
   * Runs one SDK call (retried by the SDK: adaptive mode, KMS_MAX_ATTEMPTS) and maps what is left to a DomainError.
   * On a key this process has just created, AccessDeniedException and NotFoundException are KMS's eventual
   * consistency, not a verdict: the call is repeated with backoff (100 ms doubling to 2 s, jittered) until
   * KMS_NEW_KEY_AUTH_WAIT_MS after creation, then KMS_NEW_KEY_NOT_AUTHORIZED (503). `waitOn`: the answers waited
   * out (none for a probe; NotFoundException only for CreateAlias). The wait is also bounded by the time actually
   * slept, so a clock that does not move (tests) cannot make it endless.
   */
  private async call<T>(operation: string, keyRef: string, send: () => Promise<T>, waitOn: ReadonlySet<string> = NOT_YET_CONSISTENT): Promise<T> {
    let delay = 100;
    let waitedMs = 0;
    for (;;) {
      try {
        return await send();
      } catch (err) {
        if (err instanceof DomainError) throw err;
        const name = (err as Error).name;
        if (waitOn.has(name) || (NOT_YET_CONSISTENT.has(name) && waitOn.size === 0)) {
          const left = Math.min(this.newKeyWaitLeft(keyRef), Math.max(0, this.config.newKeyAuthWaitMs - waitedMs));
          if (left > 0 && waitOn.size > 0) {
            if (waitedMs === 0) this.logger.log(`${operation} on new key ${keyRef.slice(0, 200)}: ${name}; KMS is not consistent yet, retrying for up to ${left} ms`);
            const pause = Math.min(left, Math.round(delay / 2 + (Math.random() * delay) / 2));
            await new Promise((resolve) => setTimeout(resolve, pause));
            waitedMs += pause;
            delay = Math.min(delay * 2, 2000);
            continue;
          }
          // Still inside the window without waiting (a probe), or the window ran out while waiting.
          if (left > 0 || waitedMs > 0) throw this.newKeyNotAuthorized(operation, keyRef, name, waitedMs);
        }
        const mapped = kmsDomainError(err, operation);
        this.logger.warn(`KMS ${operation} for ${keyRef.slice(0, 200)} failed after retries: ${name}: ${(err as Error).message} → ${mapped.code}`);
        throw mapped;
      }
    }
  }

  private newKeyNotAuthorized(operation: string, keyRef: string, name: string, waitedMs: number): DomainError {
    if (waitedMs > 0) this.logger.warn(`${operation} on new key ${keyRef.slice(0, 200)} still answered ${name} after ${waitedMs} ms (KMS_NEW_KEY_AUTH_WAIT_MS=${this.config.newKeyAuthWaitMs})`);
    return Errors.kmsNewKeyNotAuthorized(
      `AWS KMS still refused ${operation} on the new key ${waitedMs > 0 ? `after ${waitedMs} ms ` : ''}(${name}): permissions that depend on the key's ${AUTHORITY_TAG} tag ` +
        'can take up to five minutes to apply to a new key. Retry in a few minutes, or raise KMS_NEW_KEY_AUTH_WAIT_MS; if it persists, check the IAM policy',
      { retryAfterSeconds: 60, awsError: name, awsOperation: operation },
    );
  }
}
