/** What a retry with a known key gets. */
export type IdempotencyClaim =
  /** The key is this request's now: run it, then `complete`, `completeWithoutAnswer` or `release`. */
  | { kind: 'owner' }
  /** The key was used for a different request (another hash). */
  | { kind: 'mismatch' }
  /** The request that claimed the key has not answered yet. */
  | { kind: 'in-progress' }
  /** The first answer, to send again. */
  | { kind: 'replay'; statusCode: number; headers: Record<string, string>; body: Buffer }
  /** The first request succeeded but its answer held a secret and was not stored. */
  | { kind: 'not-replayable'; statusCode: number; headers: Record<string, string> };

/** The owner's hold on a key: its lease end tells it apart from a later owner that took a lapsed key over. */
export interface IdempotencyTicket {
  scope: string;
  key: string;
  lockedUntil: string;
}

export interface IdempotencyRequest {
  scope: string;
  key: string;
  requestSha256: string;
  /** ISO times: now, the claim's lease end, the record's end. */
  now: string;
  lockedUntil: string;
  expiresAt: string;
}

/**
 * Port: Idempotency-Key records (docs/idempotency.md). Which of concurrent requests with one key runs is decided by
 * the database (the primary key (scope, key)), never in process memory: replicas share it.
 */
export abstract class IdempotencyRecords {
  /** Claims the key for this request, or says what the earlier request with it is. */
  abstract claim(request: IdempotencyRequest): Promise<IdempotencyClaim>;
  /** Stores the owner's answer for its retries. */
  abstract complete(ticket: IdempotencyTicket, answer: { statusCode: number; headers: Record<string, string>; body: Buffer }): Promise<void>;
  /** The owner succeeded but its answer is not stored (it held a secret): only its status and safe headers are. */
  abstract completeWithoutAnswer(ticket: IdempotencyTicket, answer: { statusCode: number; headers: Record<string, string> }): Promise<void>;
  /** The owner failed: the key is free again, so a retry runs the request afresh. */
  abstract release(ticket: IdempotencyTicket): Promise<void>;
  /** Deletes at most `limit` records expired at `now`; answers how many. */
  abstract prune(now: string, limit: number): Promise<number>;
}
