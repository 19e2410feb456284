/**
 * The queries a CRL build reads with, in one place for the service's connection (typeorm-crl.repository.ts) and the
 * worker's own (crl-worker.thread.ts). `?` placeholders; PostgreSQL takes them through `numbered`.
 */

/** Keyset pagination over the unique (authority_id, serial) index. */
export const REVOKED_PAGE =
  'SELECT serial, revoked_at AS "revokedAt", revocation_reason AS "reason" FROM certificates ' +
  "WHERE authority_id = ? AND serial > ? AND status = 'revoked' AND not_after > ? ORDER BY serial LIMIT ?";

export const REVOCATION_COUNT = 'SELECT revocation_count AS n FROM authorities WHERE id = ?';

/** `?` placeholders to PostgreSQL's `$n`. */
export const numbered = (sql: string): string => {
  let index = 0;
  return sql.replace(/\?/g, () => `$${++index}`);
};
