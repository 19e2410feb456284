import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { RevocationReason, StoredCrlEntry } from '../pki/crl';
import { CrlInfo, CrlRepository, CrlSnapshotSource, StoredCrl } from './crl.repository';
import { REVOCATION_COUNT, REVOKED_PAGE } from './crl-queries';
import { CrlWorker } from './crl-worker';

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
  readonly open: boolean;
  prepare(sql: string): { all(...params: unknown[]): unknown[] };
  pragma(source: string, options: { simple: true }): unknown;
}

/**
 * SQLite's automatic WAL checkpoint runs in the commit that grows the WAL past its threshold, synchronously: after a
 * CRL of tens of MB it would stall the event loop as long as the write itself. While CRLs are being stored it is off
 * on the service's connection, and a worker thread checkpoints after each one (PASSIVE: it blocks no one); the
 * threshold comes back when the last of them is done.
 */
class DeferredCheckpoints {
  private pending = 0;
  private threshold = 0;
  private readonly running = new Set<Promise<void>>();

  defer(connection: SqliteConnection): void {
    if (this.pending++ === 0) {
      this.threshold = Number(connection.pragma('wal_autocheckpoint', { simple: true }));
      connection.pragma('wal_autocheckpoint = 0', { simple: true });
    }
  }

  /** Starts the checkpoint on a worker thread; the service does not wait for it (see settled, at shutdown). */
  runOffThread(connection: SqliteConnection, checkpoint: (file: string) => Promise<void>): void {
    const running: Promise<void> = checkpoint(connection.name)
      // On failure the WAL is checkpointed by the next commit past the threshold, as without this.
      .catch(() => undefined)
      .finally(() => {
        this.running.delete(running);
        if (--this.pending === 0 && connection.open) connection.pragma(`wal_autocheckpoint = ${this.threshold}`, { simple: true });
      });
    this.running.add(running);
  }

  /** Waits for the checkpoints still running (before the connection closes). */
  async settled(): Promise<void> {
    await Promise.all([...this.running]);
  }
}

@Injectable()
export class TypeOrmCrlRepository extends CrlRepository implements OnModuleDestroy {
  private readonly checkpoints = new DeferredCheckpoints();

  constructor(
    private readonly db: TypeOrmTransactions,
    private readonly worker: CrlWorker,
  ) {
    super();
  }

  /** A checkpoint still running finishes before TypeORM closes the connection (at application shutdown, after this). */
  async onModuleDestroy(): Promise<void> {
    await this.checkpoints.settled();
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

  async publish(crl: StoredCrl, pruneBelow: number): Promise<boolean> {
    const sqlite = this.sqliteConnection();
    if (!sqlite || sqlite.memory) return this.insert(crl, pruneBelow);
    // The WAL checkpoint that would follow this commit (copying the ~46 MB just written into the database file) runs on
    // a worker thread instead of in the commit on the event loop (docs/architecture.md "CRLs").
    this.checkpoints.defer(sqlite);
    try {
      return await this.insert(crl, pruneBelow);
    } finally {
      this.checkpoints.runOffThread(sqlite, (file) => this.worker.checkpoint(file));
    }
  }

  private insert(crl: StoredCrl, pruneBelow: number): Promise<boolean> {
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
    const main = this.sqliteConnection();
    return !main || main.memory ? null : { driver: 'sqlite', file: main.name };
  }

  /** The service's better-sqlite3 connection (TypeORM's driver holds it), or undefined on PostgreSQL. */
  private sqliteConnection(): SqliteConnection | undefined {
    if (this.db.isPostgres) return undefined;
    return (this.db.manager().connection.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
  }

  /** Only for an in-memory SQLite database (a worker thread reads every other one: snapshotSource). */
  async readRevoked(authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>): Promise<{ revocationCount: number }> {
    const main = this.sqliteConnection();
    if (!main?.memory) throw new Error('readRevoked reads an in-memory SQLite database; the CRL worker reads the others');
    return this.readRevokedInTurns(main, authorityId, now, pageSize, onPage);
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
