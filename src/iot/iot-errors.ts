import { DomainError, Errors } from '../common/errors';

const THROTTLING = new Set(['ThrottlingException', 'LimitExceededException', 'TooManyRequestsException']);
const UNAVAILABLE = new Set(['ServiceUnavailableException', 'InternalFailureException', 'InternalException', 'InternalServerException']);

/**
 * Maps what the IoT SDK throws (after its retries) to our problem codes. AWS refusing a request we built
 * is an upstream refusal (502) and says AWS's reason; an outage or throttling is a 503.
 */
export function iotDomainError(err: unknown): DomainError {
  const error = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = error?.name ?? 'Error';
  const reason = String(error?.message ?? '').slice(0, 300);
  if (THROTTLING.has(name)) return Errors.iotThrottled('AWS IoT is throttling requests; retry shortly', { retryAfterSeconds: 1 });
  if (name === 'ResourceAlreadyExistsException') {
    const resourceArn = (err as { resourceArn?: unknown }).resourceArn;
    return Errors.iotConflict(`AWS IoT: ${reason || 'the resource already exists'}`, { awsError: name, ...(typeof resourceArn === 'string' ? { resourceArn } : {}) });
  }
  if (UNAVAILABLE.has(name) || error?.$metadata?.httpStatusCode === undefined) {
    return Errors.iotUnavailable(`AWS IoT is unreachable or failing (${name})`);
  }
  return Errors.iotRefused(`AWS IoT refused the request: ${name}${reason ? `: ${reason}` : ''}`, { awsError: name });
}
