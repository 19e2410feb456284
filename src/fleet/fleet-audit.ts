export type FindingSeverity = 'high' | 'medium' | 'low';

export const FINDING_TYPES = [
  'DEVICE_CERTIFICATE_EXPIRING',
  'CA_CERTIFICATE_EXPIRING',
  'IOT_STATUS_DRIFT',
  'IOT_UNKNOWN_CERTIFICATE',
  'WEAK_KEY',
  'CLAIM_NEAR_QUOTA',
  'CLAIM_NEAR_EXPIRY',
  'PERMISSIVE_POLICY_ATTACHED',
  /** An IoT target's AWS calls failed during the audit: its AWS checks are incomplete; the others ran (docs/iot-targets.md). */
  'IOT_TARGET_UNREACHABLE',
] as const;
export type FindingType = (typeof FINDING_TYPES)[number];

/** What a finding's remediation does; null when no remediation is safe to automate. */
export type Remediation = 'push-iot-status' | 'revoke-in-iot' | 'open-rotation-campaign';

export interface AuditParameters {
  /** Device certificates expiring within this many days. */
  deviceExpiryDays: number;
  /** CA certificates expiring within this many days. */
  caExpiryDays: number;
  /** Claims whose notAfter is within this many days. */
  claimExpiryDays: number;
  /** Claims whose used/maxDevices reaches this fraction. */
  claimQuotaFraction: number;
  /** How many AWS IoT-registered device certificates have their attached policies read (ListAttachedPolicies is paced). */
  policySample: number;
}

export interface FleetAudit {
  id: string;
  status: 'running' | 'done' | 'failed';
  trigger: 'manual' | 'scheduled';
  parameters: AuditParameters;
  startedAt: string;
  finishedAt: string | null;
  summary: { byType: Record<string, number>; bySeverity: Record<string, number>; total: number; error?: string } | null;
}

export interface AuditFinding {
  id: string;
  auditId: string;
  type: FindingType;
  severity: FindingSeverity;
  resourceType: string;
  resourceId: string;
  details: Record<string, unknown>;
  remediation: Remediation | null;
  remediatedAt: string | null;
  remediationResult: Record<string, unknown> | null;
}
