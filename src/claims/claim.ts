import { IotThingOptions } from '../certificates/certificate';
import type { Allocation } from '../iot/iot-target';

export type ClaimStatus = 'active' | 'revoked';

export const ATTESTATION_MODES = ['off', 'optional', 'tpm'] as const;
export type AttestationMode = (typeof ATTESTATION_MODES)[number];

/**
 * A factory claim: a production line's permission to exchange its claim certificate for up to `maxDevices`
 * device certificates from `deviceAuthorityId`, between `notBefore` and `notAfter`.
 */
export interface Claim {
  id: string;
  name: string;
  factory: string;
  line: string | null;
  status: ClaimStatus;
  claimAuthorityId: string;
  deviceAuthorityId: string;
  profile: string;
  validityDays: number | null;
  maxDevices: number;
  used: number;
  notBefore: string;
  notAfter: string;
  /** Anchored when applied: the whole serial must match. */
  serialPattern: string | null;
  /** `{serial}` is replaced by the device serial, e.g. `acme-{serial}`. */
  thingNameTemplate: string;
  iot: IotThingOptions | null;
  /** Which IoT target(s) its devices go to (docs/iot-targets.md); null = the default target. */
  allocation: Allocation | null;
  allowReprovisioning: boolean;
  /** Whether devices must (tpm), may (optional) or cannot (off) enroll with TPM attestation (docs/hardware-identity.md). */
  attestation: AttestationMode;
  /** Null: no allow-list (any serial the pattern accepts). A number: only listed serials, however many. */
  allowlistSize: number | null;
  /** The allow-list in force (a new upload writes a new list and swaps this), or null. */
  allowlistId: number | null;
  claimCertificateId: string;
  lastExchangeAt: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export interface ProvisionedDevice {
  claimId: string;
  deviceSerial: string;
  certificateId: string;
  publicKeySha256: string;
  provisionedAt: string;
}

/** An exchange's Idempotency-Key, scoped to its claim, with the request it named and the certificate it produced. */
export interface ExchangeIdempotencyKey {
  claimId: string;
  idempotencyKey: string;
  requestSha256: string;
  certificateId: string;
  createdAt: string;
}

/** The thing name a claim gives a device serial. */
export function renderThingName(template: string, deviceSerial: string): string {
  return template.split('{serial}').join(deviceSerial);
}
