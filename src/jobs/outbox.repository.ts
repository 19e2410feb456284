import { OutboxJob } from './outbox-job';

/** Port: the outbox table. */
export abstract class OutboxRepository {
  /** Inserts in the current transaction; false when a live (pending/running) job has the same dedupe key. */
  abstract insert(job: OutboxJob): Promise<boolean>;
  /**
   * Claims up to `limit` due jobs (pending and due, or running with an expired lease) for `worker` until
   * `lockedUntil`, counting an attempt. Two workers never claim the same job at once.
   */
  abstract claim(worker: string, now: string, lockedUntil: string, limit: number): Promise<OutboxJob[]>;
  /** Records the outcome of a job this worker holds; false when the lease was lost to another worker. */
  abstract finish(id: string, worker: string, outcome: { status: 'done' | 'dead' | 'pending'; runAfter?: string; lastError?: string | null; now: string }): Promise<boolean>;
  /** Extends this worker's lease on a job it is still running; false when the lease was lost. */
  abstract extendLease(id: string, worker: string, lockedUntil: string): Promise<boolean>;
  abstract find(id: string): Promise<OutboxJob | null>;
  /** When the first job still kept (any status) with this dedupe key was created; null when there is none. */
  abstract firstCreatedAt(dedupeKey: string): Promise<string | null>;
  /** Dead jobs ordered by (createdAt, id), after the given position. */
  abstract listDead(after: { createdAt: string; id: string } | undefined, limit: number): Promise<OutboxJob[]>;
  /** Dead jobs per kind. */
  abstract countDeadByKind(): Promise<{ kind: string; count: number }[]>;
  /**
   * Makes a dead job pending again (due now, attempts from zero), in the current transaction. 'not-dead' when it is
   * not dead (any more); 'duplicate' when a live job with its dedupe key exists (that one does the work).
   */
  abstract revive(id: string, now: string): Promise<'revived' | 'not-dead' | 'duplicate'>;
  /** Deletes finished jobs last updated before `before`. */
  abstract pruneDone(before: string): Promise<void>;
}
