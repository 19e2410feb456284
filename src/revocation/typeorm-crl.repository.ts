import { Injectable } from '@nestjs/common';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { TimeSlicer } from '../common/yield';
import { RevocationReason, StoredCrlEntry } from '../pki/crl';
import { CrlInfo, CrlRepository, CrlSnapshotSource, StoredCrl } from './crl.repository';
import { numbered, REVOCATION_COUNT, REVOKED_PAGE } from './crl-queries';

const INFO_COLUMNS =
  'authority_id AS "authorityId", crl_number AS "crlNumber", this_update AS "thisUpdate", next_update AS "nextUpdate", revocations_covered AS "revocationsCovered"';

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
  reason: RevocationReason | null;
}

/** The part of a better-sqlite3 connection used here (TypeORM's driver holds it). */
interface SqliteConnection {
  readonly inTransaction: boolean;
  readonly name: string;
  readonly memory: boolean;
  prepare(sql: string): { all(...params: unknown[]): unknown[] };
  exec(sql: string): void;
  close(): void;
}
type SqliteConnectionClass = new (file: string, options: { readonly: boolean; fileMustExist: boolean }) => SqliteConnection;

/** SQLite: pages read in one turn of the event loop before it yields (docs/architecture.md "CRLs"). */
const SQLITE_SLICE_MS = 25;

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
    const [row] = await this.db.sql<{ der: string | Buffer }>('SELECT der FROM crls WHERE authority_id = ? AND crl_number = ?', [authorityId, crlNumber]);
    if (!row) return null;
    // SQLite stores the bytes as a BLOB (see publish); PostgreSQL, and CRLs stored before, as base64 text.
    return Buffer.isBuffer(row.der) ? row.der : Buffer.from(row.der, 'base64');
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
      // The DER goes in as bytes on both drivers. SQLite keeps a BLOB as it is in a column of TEXT affinity (no base64
      // copy a third larger; better-sqlite3 writes synchronously). PostgreSQL's column is text: the server encodes
      // the bytea parameter to base64 itself, so no 61 MB string is built and serialised on the event loop.
      await this.db.sql(
        `INSERT INTO crls (authority_id, crl_number, this_update, next_update, revocations_covered, der) VALUES (?, ?, ?, ?, ?, ${this.db.isPostgres ? "encode(?::bytea, 'base64')" : '?'})`,
        [crl.authorityId, crl.crlNumber, crl.thisUpdate, crl.nextUpdate, crl.revocationsCovered, crl.der],
      );
      await this.db.sql('DELETE FROM crls WHERE authority_id = ? AND crl_number < ?', [crl.authorityId, pruneBelow]);
      return true;
    });
  }

  /** The database as a worker thread opens it on its own: a file SQLite database, or PostgreSQL's URL (not :memory:). */
  override snapshotSource(): CrlSnapshotSource | null {
    const options = this.db.manager().connection.options;
    if (options.type === 'postgres') return options.url ? { driver: 'postgres', url: options.url } : null;
    const main = (this.db.manager().connection.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
    return main.memory ? null : { driver: 'sqlite', file: main.name };
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
        if (rows.length) await onPage(rows);
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
   * SQLite: a read-only connection of its own (WAL lets it read while the service's connection writes), in one read
   * transaction, so the counter and every page come from one snapshot, as on PostgreSQL, and the requests' transactions
   * never wait for it. Reads are synchronous: the event loop gets a turn every SQLITE_SLICE_MS. An in-memory database
   * cannot be opened twice: there each page is read in a turn of the service's connection (readRevokedInTurns).
   */
  private async readRevokedSqlite(authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>) {
    const main = (this.db.manager().connection.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
    if (main.memory) return this.readRevokedInTurns(main, authorityId, now, pageSize, onPage);
    const reader = new (main.constructor as SqliteConnectionClass)(main.name, { readonly: true, fileMustExist: true });
    try {
      reader.exec('BEGIN');
      const [count] = reader.prepare(REVOCATION_COUNT).all(authorityId) as { n: number }[];
      const statement = reader.prepare(REVOKED_PAGE);
      const slicer = new TimeSlicer(SQLITE_SLICE_MS);
      for (let after = ''; ; ) {
        const rows = statement.all(authorityId, after, now, pageSize) as RevokedRow[];
        if (rows.length) await onPage(rows);
        if (rows.length < pageSize) break;
        after = rows[rows.length - 1].serial;
        await slicer.maybeYield();
      }
      reader.exec('COMMIT');
      return { revocationCount: count ? Number(count.n) : 0 };
    } finally {
      reader.close();
    }
  }

  /**
   * The counter is read first; a revocation is final, so every revocation it counts is in the pages read after it (a
   * later one may be too: the CRL then lists more than it says it covers). A page is read directly when no transaction
   * is open on the connection (committed data only), else in a short transaction of its own after the open one.
   */
  private async readRevokedInTurns(connection: SqliteConnection, authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>) {
    const statement = connection.prepare(REVOKED_PAGE);
    const read = <T>(work: () => T): Promise<T> => (connection.inTransaction ? this.db.run(async () => work()) : Promise.resolve(work()));
    const [count] = await read(() => connection.prepare(REVOCATION_COUNT).all(authorityId) as { n: number }[]);
    for (let after = ''; ; ) {
      const from = after;
      const rows = await read(() => statement.all(authorityId, from, now, pageSize) as RevokedRow[]);
      if (rows.length) await onPage(rows);
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
