import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';

/**
 * The SDK's retry strategy, except that `LimitExceededException` is never retried. The SDK classes it as throttling
 * (with ThrottlingException) and retries it with backoff — and in adaptive mode slows every later call down — but in
 * AWS IoT it is a hard limit (HTTP 410, e.g. "up to 10 CA certificates with the same CA subject field per AWS
 * account", https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCACertificate.html) and in AWS KMS a
 * resource quota ("requests to create an additional resource of that type generate an LimitExceededException",
 * https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html). Neither goes away by waiting, so the
 * caller hears of it at once. ThrottlingException keeps the inner strategy's backoff. See docs/aws-behaviours.md.
 */
export class HardLimitsNotRetried implements RetryStrategyV2 {
  constructor(private readonly inner: RetryStrategyV2) {}

  acquireInitialRetryToken(retryTokenScope: string): Promise<RetryToken> {
    return this.inner.acquireInitialRetryToken(retryTokenScope);
  }

  async refreshRetryTokenForRetry(token: RetryToken, errorInfo: RetryErrorInfo): Promise<RetryToken> {
    // Refusing a token makes the SDK throw the original error, which is what the caller should see.
    if ((errorInfo.error as { name?: string } | undefined)?.name === 'LimitExceededException') throw new Error('LimitExceededException is not retried');
    return this.inner.refreshRetryTokenForRetry(token, errorInfo);
  }

  recordSuccess(token: RetryToken): void {
    this.inner.recordSuccess(token);
  }
}
