// The allocation vocabulary lives in common/ (claims, EST labels, profiles and config use it); re-exported here.
export type { Allocation } from '../common/allocation';
export { allocate, allocationTargets, checkAllocation, DEFAULT_TARGET_ID, IOT_TARGET_ID_PATTERN } from '../common/allocation';

/** An AWS account and region devices are registered in (docs/iot-targets.md). */
export interface IotTarget {
  id: string;
  /** 12 digits; null for the default target when AWS_ACCOUNT_ID is not set. */
  accountId: string | null;
  region: string;
  roleArn: string | null;
  profile: string | null;
  endpoint: string | null;
  /** Per-operation TPS overriding IOT_RATE_LIMITS; null = the service's. */
  rateLimits: Record<string, number> | null;
  createdAt: string | null;
}

/**
 * The pacing budget prefix of a target's AWS IoT calls (docs/limits.md): AWS's quotas are per account and region, so
 * targets known to share both share one budget; a target whose account is not configured has its own.
 */
export function iotBudgetPrefix(target: { id: string; accountId: string | null; region: string }): string {
  return target.accountId ? `iot:${target.accountId}:${target.region}` : `iot:target:${target.id}`;
}
