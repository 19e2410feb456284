/**
 * Turns what the generated client returns on failure into a CliError: a problem+json (RFC 9457) body becomes its
 * `detail` and `code` on one line plus a hint that says what to fix; a fetch failure names the URL it could not reach.
 */
import { CliError, EXIT } from './exit-codes';

interface Problem {
  code?: string;
  detail?: string;
  title?: string;
  status?: number;
  errors?: string[];
  retryAfterSeconds?: number;
}

/** Hints for the codes an operator most often meets; anything else gets the generic hint of its status class. */
const HINTS: Record<string, string> = {
  UNAUTHENTICATED: 'the API key is missing, mistyped, expired or revoked: check FLEET_PKI_KEY or --key-file',
  FORBIDDEN: "the API key's role does not allow this: use a key with the needed role (see `GET /v1/api-keys`)",
  VALIDATION_FAILED: 'fix the options named above (see `fleet-pki <command> --help`)',
  INVALID_CURSOR: 'start the listing again without --cursor',
  INVALID_CSR: 'the CSR file must hold one PEM "CERTIFICATE REQUEST" (e.g. `openssl req -new ...`)',
  CSR_SIGNATURE_INVALID: 'the CSR was not signed by its own key: make it again with openssl',
  UNSUPPORTED_KEY: 'use an EC P-256/P-384 or RSA ≥ 2048 key in the CSR',
  KEY_NOT_ALLOWED: "the profile does not allow this key type: make the CSR with a key the profile accepts",
  PROFILE_NOT_FOUND: 'name an existing profile with --profile (e.g. device)',
  VALIDITY_EXCEEDS_PROFILE: 'ask for fewer --validity-days',
  AUTHORITY_NOT_FOUND: 'check the authority id: `fleet-pki authorities list`',
  AUTHORITY_NOT_ACTIVE: 'the authority is not active (retiring, disabled or pending): use its successor, see `fleet-pki authorities list`',
  AUTHORITY_USAGE_MISMATCH: 'use a devices authority to issue certificates and a claims authority for claim certificates',
  PARENT_AUTHORITY_REQUIRED: 'an intermediate needs --parent <root authority id>',
  AUTHORITY_IS_ROOT: 'only intermediates rotate: name an intermediate authority',
  CERTIFICATE_NOT_FOUND: 'check the certificate id: `fleet-pki certificates search`',
  CERTIFICATE_ALREADY_REVOKED: 'nothing to do: the certificate is already revoked',
  USE_CLAIM_REVOCATION: 'this is a claim certificate: revoke the claim with `fleet-pki claims revoke <claim id>`',
  CLAIM_NOT_FOUND: 'check the claim id (GET /v1/claims lists them)',
  CLAIM_ALREADY_REVOKED: 'nothing to do: the claim is already revoked',
  INVALID_CLAIM: 'fix the claim options named above',
  INVALID_ALLOWLIST: 'the file must hold one serial per line (optionally a `serial` header line), or a JSON array',
  ALLOWLIST_UPLOADS_BUSY: 'the service is writing other allow-lists: retry in a moment',
  CAMPAIGN_NOT_FOUND: 'check the campaign id: `fleet-pki rotations status`',
  CAMPAIGN_NOT_OPEN: 'the campaign is already completed, cancelled or closed',
  CAMPAIGN_EMPTY: 'the selector matches no active certificate: widen it',
  KEY_BACKEND_NOT_CONFIGURED: 'the service has no such key backend configured: use --key-backend local or configure AWS KMS',
  RATE_LIMITED: 'too many requests: wait and retry',
  PAYLOAD_TOO_LARGE: 'the file is larger than the service accepts (see docs/limits.md)',
  NOT_READY: 'the service is starting or its database is unreachable: retry shortly, check GET /readyz',
  INTERNAL_ERROR: "the service failed: look in its logs for the request's id",
};

function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && ('code' in value || 'detail' in value || 'status' in value);
}

/** The CliError for a failed call: `error` and `response` as the generated client returns them. */
export function failure(error: unknown, response: Response | undefined, baseUrl: string): CliError {
  if (!response) {
    // fetch failed before any answer: name the URL and the cause (ECONNREFUSED, ENOTFOUND, a TLS error, ...).
    const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
    const why = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
    const tls = /CERT|SSL|TLS|ERR_TLS/i.test(String(why));
    return new CliError(
      `cannot reach the service at ${baseUrl} (${why})`,
      EXIT.SERVICE,
      tls
        ? "the service's TLS certificate is not trusted here: if it comes from a private CA, point NODE_EXTRA_CA_CERTS at that CA's PEM"
        : 'check --url / FLEET_PKI_URL and that the service is running',
    );
  }
  const status = response.status;
  const exitCode = status >= 500 || status < 400 ? EXIT.SERVICE : EXIT.REFUSED;
  if (isProblem(error)) {
    const code = error.code ?? `HTTP_${status}`;
    const details = error.errors?.length ? `: ${error.errors.join('; ')}` : '';
    let hint = HINTS[code] ?? (exitCode === EXIT.SERVICE ? 'the service failed: retry later or look in its logs' : undefined);
    if (code === 'RATE_LIMITED' && error.retryAfterSeconds) hint = `too many requests: retry in ${error.retryAfterSeconds} s`;
    return new CliError(`${error.detail ?? error.title ?? 'request failed'}${details} (${code}, HTTP ${status})`, exitCode, hint, code);
  }
  const text = typeof error === 'string' && error.trim() ? `: ${error.trim().slice(0, 200)}` : '';
  return new CliError(`HTTP ${status} from ${response.url || baseUrl}${text}`, exitCode, exitCode === EXIT.SERVICE ? 'the service failed: retry later or look in its logs' : undefined);
}
