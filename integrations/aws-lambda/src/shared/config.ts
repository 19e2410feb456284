/**
 * The Lambdas' settings, from their environment (docs/aws-fleet-provisioning.md, "Lambda environment"). Read on each
 * invocation (cheap), so a configuration change takes effect without a cold start and tests can set them per case.
 */
export interface LambdaConfig {
  /** Fleet PKI's base URL, e.g. https://pki.example.com (no trailing slash needed). */
  baseUrl: string;
  /** Secrets Manager secret id or ARN holding the API key (the secret string itself, or JSON {"apiKey": "…"}). */
  apiKeySecretId?: string;
  /** Or: an SSM SecureString parameter holding it. */
  apiKeyParameter?: string;
  /** How long the API key is kept in memory before it is read again (API_KEY_CACHE_SECONDS, default 300). */
  apiKeyCacheMs: number;
  /** Per attempt (FLEET_PKI_TIMEOUT_MS, default 1500). */
  timeoutMs: number;
  /**
   * The whole invocation's budget when AWS gives no remaining time (FLEET_PKI_DEADLINE_MS, default 4000): every attempt,
   * backoff and the API key read end by then. With a Lambda context the deadline is its remaining time minus a margin.
   */
  deadlineMs: number;
  /** Further attempts after a network error, a timeout, 429 or 5xx (FLEET_PKI_RETRIES, default 2, at most 5). */
  retries: number;
  /** PEM of a private CA for Fleet PKI's TLS certificate (FLEET_PKI_CA_BUNDLE: the PEM itself, or a file path). */
  caBundle?: string;
}

function positiveInt(name: string, fallback: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${name} must be a whole number from 0 to ${max}`);
  return value;
}

export function lambdaConfig(): LambdaConfig {
  const baseUrl = process.env.FLEET_PKI_URL;
  if (!baseUrl || !/^https?:\/\//.test(baseUrl)) throw new Error('FLEET_PKI_URL must be set to the https base URL of Fleet PKI');
  // The API key travels as a bearer token: plain http only to this host itself (tests, a local proxy).
  if (baseUrl.startsWith('http:') && !isLoopback(new URL(baseUrl).hostname)) throw new Error('FLEET_PKI_URL must be https (http is accepted for a loopback address only)');
  const apiKeySecretId = process.env.FLEET_PKI_API_KEY_SECRET_ID || undefined;
  const apiKeyParameter = process.env.FLEET_PKI_API_KEY_PARAMETER || undefined;
  if (!apiKeySecretId && !apiKeyParameter) throw new Error('set FLEET_PKI_API_KEY_SECRET_ID (Secrets Manager) or FLEET_PKI_API_KEY_PARAMETER (SSM SecureString)');
  return {
    baseUrl: baseUrl.replace(/\/+$/, ''),
    apiKeySecretId,
    apiKeyParameter,
    apiKeyCacheMs: positiveInt('API_KEY_CACHE_SECONDS', 300, 86_400) * 1000,
    timeoutMs: positiveInt('FLEET_PKI_TIMEOUT_MS', 1500, 60_000) || 1500,
    deadlineMs: positiveInt('FLEET_PKI_DEADLINE_MS', 4000, 300_000) || 4000,
    retries: positiveInt('FLEET_PKI_RETRIES', 2, 5),
    caBundle: process.env.FLEET_PKI_CA_BUNDLE || undefined,
  };
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** What the Lambda runtime passes as the handler's second argument (the part used here). */
export interface LambdaContextLike {
  getRemainingTimeInMillis?: () => number;
}

/** Kept back from the Lambda's remaining time: the answer and the "fail closed" log line must be written before it ends. */
export const DEADLINE_MARGIN_MS = 500;

/** The instant (ms since the epoch) by which this invocation's calls must be over. */
export function invocationDeadline(config: LambdaConfig, context?: LambdaContextLike): number {
  const remaining = typeof context?.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS : config.deadlineMs;
  return Date.now() + Math.max(0, remaining);
}
