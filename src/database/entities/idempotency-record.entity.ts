import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One Idempotency-Key of one caller on one route (docs/idempotency.md). The primary key (scope, key) decides, in the
 * database, which of concurrent duplicates runs: the others find the row.
 */
@Entity('idempotency_records')
export class IdempotencyRecordEntity {
  /** The caller (actor type and id) and the route (method and path pattern). */
  @PrimaryColumn({ type: 'varchar', length: 300 }) scope: string;
  @PrimaryColumn({ name: 'idempotency_key', type: 'varchar', length: 128 }) idempotencyKey: string;
  /** SHA-256 (hex) over the method, the URL with its query and the canonical body. */
  @Column({ name: 'request_sha256', type: 'varchar', length: 64 }) requestSha256: string;
  /** in_progress | completed | not_replayable (the answer held a secret and was not stored). */
  @Column({ type: 'varchar', length: 16 }) state: string;
  /** While in_progress: until when the request that claimed the key owns it (a crashed one's claim lapses). */
  @Column({ name: 'locked_until', type: 'varchar', length: 32 }) lockedUntil: string;
  @Column({ name: 'status_code', type: 'integer', nullable: true }) statusCode: number | null;
  /** JSON object of the answer's headers that a replay sends again (Content-Type, Location, …). */
  @Column({ name: 'response_headers', type: 'text', nullable: true }) responseHeaders: string | null;
  /** The answer's body, base64. */
  @Column({ name: 'response_body', type: 'text', nullable: true }) responseBody: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Index('idx_idempotency_records_expires')
  @Column({ name: 'expires_at', type: 'varchar', length: 32 }) expiresAt: string;
}
