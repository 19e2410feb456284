import { CertificateMode } from './iot-registry';

export const DEVICE_REGISTRATION_MODES = ['jitr', 'jitp', 'api', 'none'] as const;
/** How device certificates of the CA reach AWS IoT: they register themselves (JITR/JITP), we register them (api), or not at all. */
export type DeviceRegistration = (typeof DEVICE_REGISTRATION_MODES)[number];

export interface IotCaRegistration {
  authorityId: string;
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
