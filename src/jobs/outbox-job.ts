export type OutboxJobStatus = 'pending' | 'running' | 'done' | 'dead';

export interface OutboxJob {
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  status: OutboxJobStatus;
  attempts: number;
  runAfter: string;
  lockedBy: string | null;
  lockedUntil: string | null;
  lastError: string | null;
  dedupeKey: string | null;
  targetType: string | null;
  targetId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewOutboxJob {
  kind: string;
  payload: Record<string, unknown>;
  /** At most one job per key, ever: a second enqueue with the same key is a no-op. */
  dedupeKey?: string;
  target?: { type: string; id: string };
  /** Not before this time (default: now). */
  runAfter?: Date;
}
