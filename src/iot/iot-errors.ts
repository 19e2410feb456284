import { DomainError, Errors, finalError } from '../common/errors';

const THROTTLING = new Set(['ThrottlingException', 'TooManyRequestsException']);
const UNAVAILABLE = new Set(['ServiceUnavailableException', 'InternalFailureException', 'InternalException', 'InternalServerException']);

/**
 * The AWS IoT limit behind a LimitExceededException (HTTP 410 in the AWS IoT model), by operation: from the API
 * reference (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCACertificate.html: "You can register up
 * to 10 CA certificates with the same CA subject field per AWS account"), API_AttachPolicy.html and API_CreateJob.html
 * (LimitExceededException, HTTP 410) and the AWS IoT Core quotas (https://docs.aws.amazon.com/general/latest/gr/iot-core.html).
 */
const LIMITS: Record<string, string> = {
  RegisterCACertificate: 'at most 10 CA certificates with the same subject per account and region',
  AttachPolicy: 'the quota on AWS IoT policies attached to one certificate',
  CreateJob: 'the AWS IoT Jobs limits (concurrent and in-progress jobs per account)',
};

/**
 * Maps what the IoT SDK throws (after its retries) to our problem codes. AWS refusing a request we built
 * is an upstream refusal (502) and says AWS's reason; an outage or throttling is a 503. A LimitExceededException is a
 * hard limit, not throttling: AWS_LIMIT_EXCEEDED (409), final, naming the limit (docs/aws-behaviours.md).
 */
export function iotDomainError(err: unknown, operation = ''): DomainError {
  const error = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = error?.name ?? 'Error';
  const reason = String(error?.message ?? '').slice(0, 300);
  if (THROTTLING.has(name)) return Errors.iotThrottled('AWS IoT is throttling requests; retry shortly', { retryAfterSeconds: 1 });
  if (name === 'LimitExceededException') {
    const limit = LIMITS[operation] ?? 'an AWS IoT limit';
    return finalError(
      Errors.awsLimitExceeded(`AWS IoT refused ${operation || 'the request'}: ${limit} is reached${reason ? ` (AWS: ${reason})` : ''}; retrying will not help`, {
        awsService: 'iot',
        awsError: name,
        awsOperation: operation || undefined,
      }),
    );
  }
  if (name === 'ResourceAlreadyExistsException') {
    const { resourceId, resourceArn } = err as { resourceId?: unknown; resourceArn?: unknown };
    return Errors.iotConflict(`AWS IoT: ${reason || 'the resource already exists'}`, {
      awsError: name,
      ...(typeof resourceId === 'string' ? { resourceId } : {}),
      ...(typeof resourceArn === 'string' ? { resourceArn } : {}),
    });
  }
  if (UNAVAILABLE.has(name) || error?.$metadata?.httpStatusCode === undefined) {
    return Errors.iotUnavailable(`AWS IoT is unreachable or failing (${name})`);
  }
  return Errors.iotRefused(`AWS IoT refused the request: ${name}${reason ? `: ${reason}` : ''}`, { awsError: name });
}
