export interface ExpiringGroup {
  authorityId: string;
  claimId: string | null;
  profile: string;
  certificateIds: string[];
  earliestNotAfter: string;
}

export interface StatusDriftCandidate {
  id: string;
  fingerprint: string;
  status: 'revoked' | 'superseded';
  /** The AWS IoT certificate id of the issuing CA's registration. */
  caCertificateId: string;
  /** The IoT target the certificate is in (docs/iot-targets.md). */
  targetId: string;
}

/** Port: the cross-table reads a fleet audit makes (read-only). */
export abstract class FleetInventory {
  abstract expiringDeviceCertificates(now: string, until: string): Promise<ExpiringGroup[]>;
  /** Revoked (unexpired) certificates, and ones superseded before `supersededBefore`, under CAs registered with AWS IoT. */
  abstract statusDriftCandidates(now: string, supersededBefore: string, limit: number): Promise<StatusDriftCandidate[]>;
  abstract knownFingerprints(fingerprints: string[]): Promise<Set<string>>;
  abstract keyDescriptions(): Promise<{ keyDescription: string; count: number; sample: string[] }[]>;
  abstract activeClaims(): Promise<{ id: string; name: string; maxDevices: number; used: number; notAfter: string }[]>;
  /** In every IoT target. */
  abstract activeRegistrations(): Promise<{ authorityId: string; caCertificateId: string; targetId: string }[]>;
  /** Active certificates AWS IoT has ACTIVE (as far as we know), newest first, with their AWS IoT ARN. */
  abstract iotActiveCertificates(limit: number): Promise<{ id: string; certificateArn: string; targetId: string }[]>;
}
