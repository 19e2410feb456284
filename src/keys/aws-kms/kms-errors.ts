import { DomainError, Errors } from '../../common/errors';

/** KMS exceptions meaning the key itself cannot sign (a 409 for the caller: the authority must be fixed). */
const KEY_UNUSABLE = new Set(['DisabledException', 'KMSInvalidStateException', 'NotFoundException', 'InvalidKeyUsageException']);

/**
 * Maps what the SDK throws, after its own retries, to our problem codes. The message names the KMS
 * exception but never echoes request data; the caller logs the original.
 */
export function kmsDomainError(err: unknown): DomainError {
  const error = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const name = error?.name ?? 'Error';
  if (name === 'ThrottlingException' || name === 'LimitExceededException') {
    return Errors.keyBackendThrottled('AWS KMS is throttling signing requests for this authority; retry shortly', { retryAfterSeconds: 1 });
  }
  if (KEY_UNUSABLE.has(name)) {
    return Errors.authorityKeyUnusable(`the authority's KMS key cannot sign (${name}); enable it or rotate the authority`);
  }
  if (name === 'AccessDeniedException') {
    return Errors.keyBackendUnavailable('AWS KMS refused access to the authority key: check the IAM policy');
  }
  return Errors.keyBackendUnavailable(`AWS KMS is unreachable or failing (${name})`);
}
