import { AwsCredentialsResolver } from './aws-credentials-resolver.port';

export class DefaultChainCredentialsResolver extends AwsCredentialsResolver {
  async resolve(region: string): Promise<{ expiration?: Date }> {
    // Any client resolves the same chain (environment, web identity, profile, ECS/EC2 role endpoints). Loaded here,
    // not at start-up: a service without AWS never loads the SDK (docs/architecture.md, "Memory").
    const { KMSClient } = await import('@aws-sdk/client-kms');
    const client = new KMSClient({ region });
    try {
      const credentials = await client.config.credentials();
      return { expiration: credentials.expiration };
    } finally {
      client.destroy();
    }
  }
}
