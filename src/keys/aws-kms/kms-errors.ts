import { DomainError, Errors, finalError } from '../../common/errors';

/** KMS exceptions meaning the key itself cannot sign (a 409 for the caller: the authority must be fixed). */
const KEY_UNUSABLE = new Set(['DisabledException', 'KMSInvalidStateException', 'NotFoundException', 'InvalidKeyUsageException']);

/**
 * The KMS resource quota behind a LimitExceededException, by operation (defaults from
 * https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html; all adjustable in Service Quotas).
 */
const QUOTAS: Record<string, string> = {
  CreateKey: 'AWS KMS keys per account and region (default 100,000)',
  CreateAlias: 'aliases per KMS key (default 50)',
};

/**
 * Maps what the SDK throws, after its own retries, to our problem codes. The message names the KMS
 * exception but never echoes request data; the caller logs the original.
 *
 * ThrottlingException is a request-rate quota: worth retrying shortly. LimitExceededException is a resource quota
 * (HTTP 400, `{"__type": "LimitExceededException"}`): retrying cannot help until the quota is raised or resources are
 * freed, so it is AWS_LIMIT_EXCEEDED and final (docs/aws-behaviours.md).
 */
export function kmsDomainError(err: unknown, operation = ''): DomainError {
  const error = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = error?.name ?? 'Error';
  if (name === 'ThrottlingException') {
    return Errors.keyBackendThrottled('AWS KMS is throttling signing requests for this authority; retry shortly', { retryAfterSeconds: 1 });
  }
  if (name === 'LimitExceededException') {
    const quota = QUOTAS[operation] ?? 'a KMS resource quota';
    const reason = String(error?.message ?? '').slice(0, 300);
    return finalError(
      Errors.awsLimitExceeded(`AWS KMS refused ${operation || 'the request'}: the quota on ${quota} is reached${reason ? ` (${reason})` : ''}; raise it in Service Quotas or free resources — retrying will not help`, {
        awsService: 'kms',
        awsError: name,
        awsOperation: operation || undefined,
      }),
    );
  }
  if (KEY_UNUSABLE.has(name)) {
    return Errors.authorityKeyUnusable(`the authority's KMS key cannot sign (${name}); enable it or rotate the authority`);
  }
  if (name === 'AccessDeniedException') {
    return Errors.keyBackendUnavailable('AWS KMS refused access to the authority key: check the IAM policy');
  }
  return Errors.keyBackendUnavailable(`AWS KMS is unreachable or failing (${name})`);
}
