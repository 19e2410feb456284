import { randomUUID } from 'node:crypto';
import { AwsError } from '../http/aws-error';
import { AwsCall, StandInServer, StandInService } from '../http/standin-server';
import { awsJson11 } from '../http/wire-protocols';

/**
 * A local stand-in for the two reads the AWS Lambda handlers make for their Fleet PKI API key
 * (integrations/aws-lambda/src/shared/api-key.ts): Secrets Manager `GetSecretValue` and SSM `GetParameter`, both AWS
 * JSON 1.1 (`X-Amz-Target: secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`), so the real SDK clients run
 * against it with `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL_SSM`. Secrets and parameters are seeded in
 * code (`putSecret`, `putParameter`); unknown names answer ResourceNotFoundException / ParameterNotFound as AWS does.
 * A SecureString parameter read without WithDecryption answers its value unreadable, as AWS does (ciphertext).
 * `reads` counts calls per name, so tests can see the handlers' cache work. SigV4 must be present; it is not checked.
 */
export class SecretsStandIn {
  readonly region = 'eu-west-1';
  readonly account = '111122223333';
  /** Reads per secret id or parameter name (refused ones included). */
  readonly reads = new Map<string, number>();
  private readonly secrets = new Map<string, { arn: string; value: string; versionId: string }>();
  private readonly parameters = new Map<string, { value: string; type: 'String' | 'SecureString'; version: number }>();
  private readonly server: StandInServer;

  constructor(private knobs: { latencyMs: number; failureMode: 'none' | 'drop' } = { latencyMs: 0, failureMode: 'none' }) {
    this.server = new StandInServer(this.service());
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

  configure(knobs: Partial<{ latencyMs: number; failureMode: 'none' | 'drop' }>): void {
    this.knobs = { ...this.knobs, ...knobs };
  }

  /** Seeds (or replaces) a secret; answers its ARN. */
  putSecret(name: string, value: string): string {
    const arn = `arn:aws:secretsmanager:${this.region}:${this.account}:secret:${name}-${randomUUID().slice(0, 6)}`;
    this.secrets.set(name, { arn, value, versionId: randomUUID() });
    return arn;
  }

  putParameter(name: string, value: string, type: 'String' | 'SecureString' = 'SecureString'): void {
    const version = (this.parameters.get(name)?.version ?? 0) + 1;
    this.parameters.set(name, { value, type, version });
  }

  private service(): StandInService {
    return {
      protocol: awsJson11,
      knobs: () => this.knobs,
      hooks: [],
      operationOf: (request) => awsJson11.operation(request, 'secretsmanager') || awsJson11.operation(request, 'AmazonSSM'),
      answer: (call) => this.answer(call),
      internalError: (err) => new AwsError('InternalServiceError', String(err), 500),
    };
  }

  private answer(call: AwsCall): unknown {
    if (!String(call.request.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
      throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403);
    }
    const body = awsJson11.body(call.raw);
    if (call.operation === 'GetSecretValue') return this.getSecretValue(body);
    if (call.operation === 'GetParameter') return this.getParameter(body);
    throw new AwsError('UnknownOperationException', `the stand-in does not answer ${call.operation || 'this call'}`);
  }

  private getSecretValue(body: Record<string, unknown>): unknown {
    const id = body.SecretId;
    if (typeof id !== 'string' || id.length === 0) throw new AwsError('InvalidParameterException', 'SecretId is required');
    this.reads.set(id, (this.reads.get(id) ?? 0) + 1);
    const found = [...this.secrets.entries()].find(([name, s]) => name === id || s.arn === id);
    if (!found) throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    const [name, secret] = found;
    return { ARN: secret.arn, Name: name, SecretString: secret.value, VersionId: secret.versionId, VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 };
  }

  private getParameter(body: Record<string, unknown>): unknown {
    const name = body.Name;
    if (typeof name !== 'string' || name.length === 0) throw new AwsError('ValidationException', 'Name is required');
    this.reads.set(name, (this.reads.get(name) ?? 0) + 1);
    const parameter = this.parameters.get(name);
    if (!parameter) throw new AwsError('ParameterNotFound', '');
    const decrypted = parameter.type === 'String' || body.WithDecryption === true;
    return {
      Parameter: {
        Name: name,
        Type: parameter.type,
        Value: decrypted ? parameter.value : Buffer.from(`kms:${name}:${parameter.version}`).toString('base64'),
        Version: parameter.version,
        ARN: `arn:aws:ssm:${this.region}:${this.account}:parameter${name.startsWith('/') ? '' : '/'}${name}`,
        DataType: 'text',
      },
    };
  }
}
