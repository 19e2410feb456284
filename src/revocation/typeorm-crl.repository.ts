import { Injectable } from '@nestjs/common';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { RevocationReason, StoredCrlEntry } from '../pki/crl';
import { CrlInfo, CrlRepository, StoredCrl } from './crl.repository';

const INFO_COLUMNS =
  'authority_id AS "authorityId", crl_number AS "crlNumber", this_update AS "thisUpdate", next_update AS "nextUpdate", revocations_covered AS "revocationsCovered"';

/** Keyset pagination over the unique (authority_id, serial) index. */
const REVOKED_PAGE =
  'SELECT serial, revoked_at AS "revokedAt", revocation_reason AS "reason" FROM certificates ' +
  "WHERE authority_id = ? AND serial > ? AND status = 'revoked' AND not_after > ? ORDER BY serial LIMIT ?";

const REVOCATION_COUNT = 'SELECT revocation_count AS n FROM authorities WHERE id = ?';

interface InfoRow {
  authorityId: string;
  crlNumber: number | string;
  thisUpdate: string;
  nextUpdate: string;
  revocationsCovered: number | string;
}

interface RevokedRow {
  serial: string;
  revokedAt: string;
  reason: string | null;
}

/** `?` placeholders to PostgreSQL's `$n`. */
const numbered = (sql: string): string => {
  let index = 0;
  return sql.replace(/\?/g, () => `$${++index}`);
};

@Injectable()
export class TypeOrmCrlRepository extends CrlRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async latestInfo(authorityId: string): Promise<CrlInfo | null> {
    // Not the der column: a CRL of a million entries is ~50 MB of base64.
    const [row] = await this.db.sql<InfoRow>(`SELECT ${INFO_COLUMNS} FROM crls WHERE authority_id = ? ORDER BY crl_number DESC LIMIT 1`, [authorityId]);
    return row ? toInfo(row) : null;
  }

  async der(authorityId: string, crlNumber: number): Promise<Buffer | null> {
    const [row] = await this.db.sql<{ der: string }>('SELECT der FROM crls WHERE authority_id = ? AND crl_number = ?', [authorityId, crlNumber]);
    return row ? Buffer.from(row.der, 'base64') : null;
  }

  publish(crl: StoredCrl, pruneBelow: number): Promise<boolean> {
    return this.db.run(async () => {
      // PostgreSQL: the authority row orders publishers (SQLite transactions take turns on one connection anyway).
      if (this.db.isPostgres) await this.db.sql('SELECT id FROM authorities WHERE id = ? FOR UPDATE', [crl.authorityId]);
      const [newer] = await this.db.sql(
        'SELECT crl_number FROM crls WHERE authority_id = ? AND (crl_number > ? OR revocations_covered > ?) LIMIT 1',
        [crl.authorityId, crl.crlNumber, crl.revocationsCovered],
      );
      if (newer) return false;
      await this.db.sql(
        'INSERT INTO crls (authority_id, crl_number, this_update, next_update, revocations_covered, der) VALUES (?, ?, ?, ?, ?, ?)',
        [crl.authorityId, crl.crlNumber, crl.thisUpdate, crl.nextUpdate, crl.revocationsCovered, crl.der.toString('base64')],
      );
      await this.db.sql('DELETE FROM crls WHERE authority_id = ? AND crl_number < ?', [crl.authorityId, pruneBelow]);
      return true;
    });
  }

  async readRevoked(authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>): Promise<{ revocationCount: number }> {
    return this.db.isPostgres ? this.readRevokedPostgres(authorityId, now, pageSize, onPage) : this.readRevokedSqlite(authorityId, now, pageSize, onPage);
  }

  /**
   * PostgreSQL: one read-only REPEATABLE READ transaction on a connection of its own, so the counter and every page
   * come from one snapshot (exactly the revocations counted) and nothing is locked while the CRL is built.
   */
  private async readRevokedPostgres(authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>) {
    const runner = this.db.manager().connection.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction('REPEATABLE READ');
      await runner.query('SET TRANSACTION READ ONLY');
      const [count] = (await runner.query(numbered(REVOCATION_COUNT), [authorityId])) as { n: number | string }[];
      const sql = numbered(REVOKED_PAGE);
      for (let after = ''; ; ) {
        const rows = (await runner.query(sql, [authorityId, after, now, pageSize])) as RevokedRow[];
        if (rows.length) await onPage(rows.map(toEntry));
        if (rows.length < pageSize) break;
        after = rows[rows.length - 1].serial;
      }
      await runner.commitTransaction();
      return { revocationCount: count ? Number(count.n) : 0 };
    } finally {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      await runner.release();
    }
  }

  /**
   * SQLite has one connection: each page is read in a short transaction of its own, so it sees committed data only and
   * the requests' transactions run between pages. The counter is read first; a revocation is final, so every
   * revocation it counts is in the pages read after it (a later one may be too: the CRL then covers more than it says).
   */
  private async readRevokedSqlite(authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>) {
    const [count] = await this.db.run(() => this.db.sql<{ n: number }>(REVOCATION_COUNT, [authorityId]));
    for (let after = ''; ; ) {
      const from = after;
      const rows = await this.db.run(() => this.db.sql<RevokedRow>(REVOKED_PAGE, [authorityId, from, now, pageSize]));
      if (rows.length) await onPage(rows.map(toEntry));
      if (rows.length < pageSize) break;
      after = rows[rows.length - 1].serial;
    }
    return { revocationCount: count ? Number(count.n) : 0 };
  }
}

function toInfo(row: InfoRow): CrlInfo {
  return {
    authorityId: row.authorityId,
    crlNumber: Number(row.crlNumber),
    thisUpdate: row.thisUpdate,
    nextUpdate: row.nextUpdate,
    revocationsCovered: Number(row.revocationsCovered),
  };
}

function toEntry(row: RevokedRow): StoredCrlEntry {
  return { serial: row.serial, revokedAt: row.revokedAt, reason: (row.reason ?? 'unspecified') as RevocationReason };
}
