import * as http from 'node:http';
import { AwsError } from '../http/aws-error';
import { RestRoute } from '../http/wire-protocols';

/** The AWS account and region the IoT stand-in plays, and the ARNs of its resources. */
export class IotAccount {
  constructor(
    readonly account = '111122223333',
    readonly region = 'us-east-1',
  ) {}

  /** `arn:aws:iot:<region>:<account>:<resource>`, e.g. resource `thing/sensor-1`. */
  arn(resource: string): string {
    return `arn:aws:iot:${this.region}:${this.account}:${resource}`;
  }
}

/** An AWS IoT call with its inputs where REST-JSON puts them: path labels (decoded), query string, headers, body. */
export interface IotRequest {
  params: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface IotRoute extends RestRoute<IotRequest> {
  /** Operations whose AWS model has no ThrottlingException: the rate knobs leave them alone. */
  neverThrottled?: true;
}

// HTTP statuses from the AWS IoT model inside @aws-sdk/client-iot (httpError traits), not the usual guesses:
// ThrottlingException is 400, CertificateStateException 406, LimitExceededException 410.
export const invalid = (message: string) => new AwsError('InvalidRequestException', message, 400);
export const notFound = (message: string) => new AwsError('ResourceNotFoundException', message, 404);
export const alreadyExists = (message: string, resourceId: string, resourceArn: string) =>
  new AwsError('ResourceAlreadyExistsException', message, 409, { resourceId, resourceArn });
export const certificateState = (message: string) => new AwsError('CertificateStateException', message, 406);
export const certificateValidation = (message: string) => new AwsError('CertificateValidationException', message, 400);
export const limitExceeded = (message: string) => new AwsError('LimitExceededException', message, 410);
export const conflicting = (message: string) => new AwsError('ConflictingResourceUpdateException', message, 409);
