import { createHash } from 'node:crypto';
import { canonicalJson } from '../common/canonical-json';

/** The audited content of one event; everything here is covered by its hash. */
export interface AuditEventContent {
  seq: number;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  actorRole: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  requestId: string | null;
  sourceIp: string | null;
  details: Record<string, unknown>;
}

export const GENESIS_HASH = '0'.repeat(64);

export { canonicalJson };

/** hash = SHA-256(previous hash ‖ "\n" ‖ canonical JSON of the event), lowercase hex. */
export function chainHash(prevHash: string, event: AuditEventContent): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(event)).digest('hex');
}
