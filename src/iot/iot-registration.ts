import { CertificateMode } from './iot-registry';

/** AWS IoT policy names: 1-128 of letters, digits and _+=,.@- (the managed templates use the same names). */
export const IOT_POLICY_NAME_PATTERN = /^[\w+=,.@-]{1,128}$/;

/**
 * `arn:<partition>:iot:<region>:<account>:` from any ARN of the account (e.g. a registered CA's): thing and
 * certificate ARNs follow from it, without a Describe call per resource.
 */
export function iotArnPrefix(arn: string): string | undefined {
  return /^(arn:[^:]+:iot:[^:]+:[^:]+:)/.exec(arn)?.[1];
}

export const DEVICE_REGISTRATION_MODES = ['jitr', 'jitp', 'api', 'none'] as const;
/** How device certificates of the CA reach AWS IoT: they register themselves (JITR/JITP), we register them (api), or not at all. */
export type DeviceRegistration = (typeof DEVICE_REGISTRATION_MODES)[number];

export interface IotCaRegistration {
  authorityId: string;
  /** The IoT target (docs/iot-targets.md) it is registered in; 'default' = the service's own configuration. */
  targetId: string;
  caCertificateId: string;
  caCertificateArn: string;
  certificateMode: CertificateMode;
  status: 'ACTIVE' | 'INACTIVE';
  autoRegistration: boolean;
  deviceRegistration: DeviceRegistration;
  policyName: string | null;
  provisioningTemplate: { templateBody: string; roleArn: string } | null;
  registeredAt: string;
  updatedAt: string;
}
