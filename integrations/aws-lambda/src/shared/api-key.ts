import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { LambdaConfig } from './config';

/**
 * The Fleet PKI API key (role aws-integration), read from Secrets Manager or an SSM SecureString and kept in memory
 * for API_KEY_CACHE_SECONDS, so a warm Lambda reads it once per period, not per invocation. A 401 from Fleet PKI
 * drops it (`forgetApiKey`) so a rotated key is picked up at once. The value is never logged.
 */
let cached: { source: string; key: string; until: number } | undefined;
let pending: Promise<string> | undefined;
/** One client per process, made again only if its endpoint setting changes (never in Lambda; between test suites). */
let secretsClient: { client: SecretsManagerClient; endpoint: string | undefined } | undefined;
let ssmClient: { client: SSMClient; endpoint: string | undefined } | undefined;

/**
 * The SDK's own retries and each request bounded (the whole read is also bounded by the invocation's deadline, see
 * fleet-pki-client.ts); endpoints follow AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_SSM when set.
 */
const SDK_OPTIONS = { maxAttempts: 2, requestHandler: { connectionTimeout: 1000, requestTimeout: 1500 } };

/**
 * The key could not be read from its store. Its message is one of a few fixed sentences: never the text of a parse
 * error or an SDK error, which may quote the secret's content (MED 4 of the review: a JSON.parse message quotes the
 * input around the error, i.e. part of the key).
 */
export class ApiKeyUnreadable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiKeyUnreadable';
  }
}

export async function apiKey(config: LambdaConfig): Promise<string> {
  const source = config.apiKeySecretId ? `secret:${config.apiKeySecretId}` : `parameter:${config.apiKeyParameter}`;
  if (cached && cached.source === source && cached.until > Date.now()) return cached.key;
  // Concurrent invocations in one process (none in Lambda, many in the data-plane stand-in) share one read.
  pending ??= read(config)
    .then((key) => {
      cached = { source, key, until: Date.now() + config.apiKeyCacheMs };
      return key;
    })
    .finally(() => {
      pending = undefined;
    });
  return pending;
}

export function forgetApiKey(): void {
  cached = undefined;
}

async function read(config: LambdaConfig): Promise<string> {
  if (config.apiKeySecretId) {
    const endpoint = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    if (secretsClient?.endpoint !== endpoint) secretsClient = { client: new SecretsManagerClient(SDK_OPTIONS), endpoint };
    const out = await secretsClient!.client.send(new GetSecretValueCommand({ SecretId: config.apiKeySecretId }));
    return keyOf(out.SecretString, 'the secret');
  }
  const endpoint = process.env.AWS_ENDPOINT_URL_SSM;
  if (ssmClient?.endpoint !== endpoint) ssmClient = { client: new SSMClient(SDK_OPTIONS), endpoint };
  const out = await ssmClient!.client.send(new GetParameterCommand({ Name: config.apiKeyParameter, WithDecryption: true }));
  return keyOf(out.Parameter?.Value, 'the parameter');
}

/** The secret string is the key itself, or JSON with an `apiKey` member. */
export function keyOf(value: string | undefined, what: 'the secret' | 'the parameter'): string {
  const text = value?.trim();
  if (!text) throw new ApiKeyUnreadable(`${what} holding the Fleet PKI API key is empty`);
  if (text.startsWith('{')) {
    let parsed: { apiKey?: unknown } | null;
    try {
      parsed = JSON.parse(text) as { apiKey?: unknown } | null;
    } catch {
      // Fixed text: the parser's message quotes the input (the key) around the error.
      throw new ApiKeyUnreadable(`${what} holding the Fleet PKI API key is not valid JSON`);
    }
    if (typeof parsed?.apiKey !== 'string' || parsed.apiKey.length === 0) throw new ApiKeyUnreadable(`${what} is JSON without an "apiKey" string`);
    return parsed.apiKey;
  }
  return text;
}
