import { AwsError } from '../http/aws-error';
import { AwsCall, StandInServer, StandInService } from '../http/standin-server';
import { Throttle } from '../http/throttle';
import { awsJson11 } from '../http/wire-protocols';
import { KmsAuthorization } from './kms-authorization';
import { KeyState, KeyTag, KmsKeys } from './kms-keys';
import { KmsSignatures } from './kms-signatures';

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
 *
 * Keys and aliases live in kms-keys.ts, Sign and Verify in kms-signatures.ts, the simulated IAM policy in
 * kms-authorization.ts; the HTTP side (server, test hooks, wire protocol, throttling) is shared with the IoT stand-in
 * (../http/).
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


export class KmsStandIn {
  readonly region = 'us-east-1';
  readonly account = '111122223333';
  knobs: KmsStandInKnobs;
  /** Test hook: told when a Sign request starts waiting out the latency and when it is answered. */
  onSign?: (phase: 'start' | 'end') => void;
  private readonly server: StandInServer;
  private readonly throttle: Throttle;
  private readonly keys: KmsKeys;
  private readonly authorization: KmsAuthorization;
  private readonly operations: Record<string, (body: Record<string, unknown>) => unknown>;

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
    this.throttle = new Throttle(() => this.knobs);
    this.keys = new KmsKeys(this.region, this.account, () => this.knobs);
    this.authorization = new KmsAuthorization(this.account, this.keys, () => this.knobs);
    const signatures = new KmsSignatures(this.keys);
    this.operations = {
      CreateKey: (body) => this.keys.create(body),
      DescribeKey: (body) => this.keys.describe(body),
      GetPublicKey: (body) => this.keys.getPublicKey(body),
      Sign: (body) => signatures.sign(body),
      Verify: (body) => signatures.verify(body),
      CreateAlias: (body) => this.keys.createAlias(body),
      ListAliases: (body) => this.keys.listAliases(body),
      ScheduleKeyDeletion: (body) => this.keys.scheduleDeletion(body),
      DisableKey: (body) => this.keys.disable(body),
      EnableKey: (body) => this.keys.enable(body),
    };
    this.server = new StandInServer(this.service());
  }

  /** Calls by operation, including refused ones (for tests and benchmarks). */
  get calls(): Map<string, number> {
    return this.server.calls;
  }

  /** Calls refused with ThrottlingException so far. */
  get throttled(): number {
    return this.throttle.throttled;
  }

  /** AccessDeniedException answers given while a new key's tags were not yet visible to authorization. */
  get deniedWhilePropagating(): number {
    return this.authorization.deniedWhilePropagating;
  }

  get endpoint(): string {
    return this.server.endpoint;
  }

  async start(port = 0): Promise<this> {
    await this.server.start(port);
    return this;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  configure(knobs: Partial<KmsStandInKnobs>): void {
    this.knobs = { ...this.knobs, ...knobs };
    this.throttle.configure();
  }

  /** Test hook: the private key of a stand-in key as PKCS #8 DER and its raw secret (EC d / RSA d). */
  exportPrivateKey(keyId: string): { pkcs8: Buffer; secret: Buffer } {
    const key = this.keys.resolve(keyId);
    const jwk = key.privateKey!.export({ format: 'jwk' });
    return { pkcs8: key.privateKey!.export({ type: 'pkcs8', format: 'der' }), secret: Buffer.from(jwk.d!, 'base64url') };
  }

  keyIds(): string[] {
    return [...this.keys.keys.keys()];
  }

  /** A key's state and tags by id, key ARN or alias (test hook); undefined when there is no such key. */
  keyState(keyId: string): { arn: string; state: KeyState; tags: KeyTag[]; deletionDate?: number } | undefined {
    try {
      const key = this.keys.resolve(keyId);
      return { arn: key.arn, state: key.state, tags: key.tags.map((t) => ({ ...t })), deletionDate: key.deletionDate };
    } catch {
      return undefined;
    }
  }

  /** Every key the stand-in holds with a tag of this key (the keys a service made for its authorities). */
  keysTagged(tagKey: string): { arn: string; state: KeyState; tagValue: string }[] {
    return [...this.keys.keys.values()]
      .filter((key) => key.tags.some((t) => t.TagKey === tagKey))
      .map((key) => ({ arn: key.arn, state: key.state, tagValue: key.tags.find((t) => t.TagKey === tagKey)!.TagValue }));
  }

  /** How the shared server names, answers and hooks into KMS calls. */
  private service(): StandInService {
    return {
      protocol: awsJson11,
      knobs: () => this.knobs,
      hooks: [
        {
          method: 'GET',
          path: '/_standin/stats',
          handle: () => ({
            throttled: this.throttled,
            deniedWhilePropagating: this.deniedWhilePropagating,
            calls: Object.fromEntries(this.calls),
            tokens: this.throttle.level(),
          }),
        },
        {
          method: 'POST',
          path: '/_standin/config',
          handle: (body) => {
            this.configure(body as Partial<KmsStandInKnobs>);
            return this.knobs;
          },
        },
      ],
      operationOf: (request) => awsJson11.operation(request, 'TrentService'),
      onCall: (operation, res) => {
        if (operation === 'Sign') this.onSign?.('start');
        res.once('close', () => operation === 'Sign' && this.onSign?.('end'));
      },
      answer: (call) => this.answer(call),
      internalError: (err) => new AwsError('KMSInternalException', String(err), 500),
    };
  }

  private answer({ operation, request, raw }: AwsCall): unknown {
    if (this.knobs.failureMode === 'http500') throw new AwsError('KMSInternalException', 'The request was rejected because an internal exception occurred.', 500);
    if (request.method !== 'POST' || !operation) throw new AwsError('UnknownOperationException', 'Unknown operation');
    if (!awsJson11.hasContentType(request)) throw new AwsError('SerializationException', `Content-Type must be ${awsJson11.contentType}`);
    if (!request.headers.authorization) throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    if (!this.throttle.admit(operation)) throw new AwsError('ThrottlingException', 'Rate exceeded');
    const body = awsJson11.body(raw);
    this.authorization.authorize(operation, body);
    if (!Object.hasOwn(this.operations, operation)) throw new AwsError('UnknownOperationException', `${operation} is not supported by the stand-in`);
    return this.operations[operation](body);
  }
}
