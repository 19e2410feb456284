import { AuditEventContent } from './chain';

export interface StoredAuditEvent extends AuditEventContent {
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  action?: string;
  targetId?: string;
  actorId?: string;
  since?: string;
  until?: string;
  afterSeq?: number;
  limit: number;
}

/** Port: append-only storage of the hash-chained audit log. There is no update or delete. */
export abstract class AuditRepository {
  /** Locks the chain head for the current transaction and returns it. */
  abstract lockHead(): Promise<{ seq: number; hash: string }>;
  /** Appends the events (consecutive, in order) and moves the head to the last; inside the transaction that locked it. */
  abstract appendMany(events: StoredAuditEvent[]): Promise<void>;
  abstract list(query: AuditQuery): Promise<StoredAuditEvent[]>;
  /** Events with seq > afterSeq in seq order, at most `limit`. */
  abstract batchAfter(afterSeq: number, limit: number): Promise<StoredAuditEvent[]>;
  abstract head(): Promise<{ seq: number; hash: string }>;
}
