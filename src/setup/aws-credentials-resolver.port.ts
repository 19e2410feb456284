/** Port: resolves AWS credentials from the default chain without calling an AWS API. */
export abstract class AwsCredentialsResolver {
  abstract resolve(region: string): Promise<{ expiration?: Date }>;
}
