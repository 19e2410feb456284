import { fromIni, fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { IotTarget } from './iot-target';

/**
 * A target's credentials: its named profile (shared config/credentials files), else the SDK's default chain; with a
 * role ARN, credentials of that role assumed (STS AssumeRole) with the former. Undefined = the default chain.
 */
export function targetCredentials(target: IotTarget): AwsCredentialIdentityProvider | undefined {
  const base = target.profile ? fromIni({ profile: target.profile }) : undefined;
  if (!target.roleArn) return base;
  return fromTemporaryCredentials({
    params: { RoleArn: target.roleArn, RoleSessionName: `fleet-pki-${target.id}`.slice(0, 64) },
    ...(base ? { masterCredentials: base } : {}),
    clientConfig: { region: target.region },
  });
}
