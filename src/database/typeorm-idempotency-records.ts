import { Injectable } from '@nestjs/common';
import { IdempotencyClaim, IdempotencyRecords, IdempotencyRequest, IdempotencyTicket } from './idempotency-records';
import { TypeOrmTransactions } from './typeorm-transactions';

interface Row {
  requestSha256: string;
  state: string;
  lockedUntil: string;
  statusCode: number | null;
  responseHeaders: string | null;
  responseBody: string | null;
  expiresAt: string;
}

/** The row this owner still holds (not one a later request took over after its lease lapsed). */
const OWNED = "scope = ? AND idempotency_key = ? AND state = 'in_progress' AND locked_until = ?";
const owned = (t: IdempotencyTicket) => [t.scope, t.key, t.lockedUntil];

const COLUMNS =
  'request_sha256 AS "requestSha256", state, locked_until AS "lockedUntil", status_code AS "statusCode", ' +
  'response_headers AS "responseHeaders", response_body AS "responseBody", expires_at AS "expiresAt"';

/**
 * IdempotencyRecords on both drivers. Every statement runs in a grouped transaction of its own: on SQLite a statement
 * outside one would join whatever transaction the one connection has open (docs/architecture.md, "Group commit").
 * The claim is `INSERT … ON CONFLICT DO NOTHING RETURNING`: of concurrent duplicates exactly one gets a row back,
 * and a conflict does not abort a PostgreSQL transaction.
 */
@Injectable()
export class TypeOrmIdempotencyRecords extends IdempotencyRecords {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  claim(request: IdempotencyRequest): Promise<IdempotencyClaim> {
    return this.db.runGrouped(() => this.claimInTransaction(request));
  }

  private async claimInTransaction(r: IdempotencyRequest): Promise<IdempotencyClaim> {
    const inserted = await this.db.sql(
      'INSERT INTO idempotency_records (scope, idempotency_key, request_sha256, state, locked_until, created_at, expires_at) ' +
        "VALUES (?, ?, ?, 'in_progress', ?, ?, ?) ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING scope",
      [r.scope, r.key, r.requestSha256, r.lockedUntil, r.now, r.expiresAt],
    );
    if (inserted.length === 1) return { kind: 'owner' };
    const [row] = await this.db.sql<Row>(`SELECT ${COLUMNS} FROM idempotency_records WHERE scope = ? AND idempotency_key = ?`, [r.scope, r.key]);
    // Gone meanwhile (released by a failed owner, or pruned), or expired and not yet pruned: the key is free again.
    if (!row || row.expiresAt <= r.now) return this.takeOver(r, row ? { where: 'expires_at = ?', value: row.expiresAt } : null);
    if (row.requestSha256 !== r.requestSha256) return { kind: 'mismatch' };
    const headers = row.responseHeaders ? (JSON.parse(row.responseHeaders) as Record<string, string>) : {};
    if (row.state === 'completed') return { kind: 'replay', statusCode: Number(row.statusCode), headers, body: Buffer.from(row.responseBody ?? '', 'base64') };
    if (row.state === 'not_replayable') return { kind: 'not-replayable', statusCode: Number(row.statusCode), headers };
    // The owner's lease ran out (its process died before answering): this request takes the key over.
    if (row.lockedUntil <= r.now) return this.takeOver(r, { where: "state = 'in_progress' AND locked_until = ?", value: row.lockedUntil });
    return { kind: 'in-progress' };
  }

  /**
   * Claims a key whose row is absent or stale, with a conditional write: of concurrent takers exactly one changes the
   * row; the others see it in progress.
   */
  private async takeOver(r: IdempotencyRequest, stale: { where: string; value: string } | null): Promise<IdempotencyClaim> {
    if (stale === null) {
      const inserted = await this.db.sql(
        'INSERT INTO idempotency_records (scope, idempotency_key, request_sha256, state, locked_until, created_at, expires_at) ' +
          "VALUES (?, ?, ?, 'in_progress', ?, ?, ?) ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING scope",
        [r.scope, r.key, r.requestSha256, r.lockedUntil, r.now, r.expiresAt],
      );
      return inserted.length === 1 ? { kind: 'owner' } : { kind: 'in-progress' };
    }
    const updated = await this.db.sql(
      "UPDATE idempotency_records SET request_sha256 = ?, state = 'in_progress', locked_until = ?, status_code = NULL, response_headers = NULL, " +
        `response_body = NULL, created_at = ?, expires_at = ? WHERE scope = ? AND idempotency_key = ? AND ${stale.where} RETURNING scope`,
      [r.requestSha256, r.lockedUntil, r.now, r.expiresAt, r.scope, r.key, stale.value],
    );
    return updated.length === 1 ? { kind: 'owner' } : { kind: 'in-progress' };
  }

  async complete(ticket: IdempotencyTicket, answer: { statusCode: number; headers: Record<string, string>; body: Buffer }): Promise<void> {
    await this.db.runGrouped(() =>
      this.db.sql(`UPDATE idempotency_records SET state = 'completed', status_code = ?, response_headers = ?, response_body = ? WHERE ${OWNED}`, [
        answer.statusCode,
        JSON.stringify(answer.headers),
        answer.body.toString('base64'),
        ...owned(ticket),
      ]),
    );
  }

  async completeWithoutAnswer(ticket: IdempotencyTicket, answer: { statusCode: number; headers: Record<string, string> }): Promise<void> {
    await this.db.runGrouped(() =>
      this.db.sql(`UPDATE idempotency_records SET state = 'not_replayable', status_code = ?, response_headers = ? WHERE ${OWNED}`, [
        answer.statusCode,
        JSON.stringify(answer.headers),
        ...owned(ticket),
      ]),
    );
  }

  async release(ticket: IdempotencyTicket): Promise<void> {
    await this.db.runGrouped(() => this.db.sql(`DELETE FROM idempotency_records WHERE ${OWNED}`, owned(ticket)));
  }

  async prune(now: string, limit: number): Promise<number> {
    // One bounded batch (the Pruner loops): a backlog never becomes one long delete.
    const deleted = await this.db.runGrouped(() =>
      this.db.sql(
        `DELETE FROM idempotency_records WHERE (scope, idempotency_key) IN (SELECT scope, idempotency_key FROM idempotency_records WHERE expires_at <= ? LIMIT ${Number(limit)}) RETURNING scope`,
        [now],
      ),
    );
    return deleted.length;
  }
}
