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
  /** Per attempt (FLEET_PKI_TIMEOUT_MS, default 2000). */
  timeoutMs: number;
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
  if (!baseUrl || !/^https?:\/\//.test(baseUrl)) throw new Error('FLEET_PKI_URL must be set to the http(s) base URL of Fleet PKI');
  const apiKeySecretId = process.env.FLEET_PKI_API_KEY_SECRET_ID || undefined;
  const apiKeyParameter = process.env.FLEET_PKI_API_KEY_PARAMETER || undefined;
  if (!apiKeySecretId && !apiKeyParameter) throw new Error('set FLEET_PKI_API_KEY_SECRET_ID (Secrets Manager) or FLEET_PKI_API_KEY_PARAMETER (SSM SecureString)');
  return {
    baseUrl: baseUrl.replace(/\/+$/, ''),
    apiKeySecretId,
    apiKeyParameter,
    apiKeyCacheMs: positiveInt('API_KEY_CACHE_SECONDS', 300, 86_400) * 1000,
    timeoutMs: positiveInt('FLEET_PKI_TIMEOUT_MS', 2000, 60_000) || 2000,
    retries: positiveInt('FLEET_PKI_RETRIES', 2, 5),
    caBundle: process.env.FLEET_PKI_CA_BUNDLE || undefined,
  };
}
