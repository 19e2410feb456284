import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { RevocationReason, StoredCrlEntry } from '../pki/crl';
import { CrlInfo, CrlRepository, CrlSnapshotSource, StoredCrl } from './crl.repository';
import { REVOCATION_COUNT, REVOKED_PAGE } from './crl-queries';
import { yieldToEventLoop } from '../common/yield';

/** The most of a CRL's DER one statement writes (crl_chunks): 4 MiB, ~10 ms of SQLite work (12 chunks for a million entries). */
export const CRL_CHUNK_BYTES = 4 * 1024 * 1024;

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
}

@Injectable()
export class TypeOrmCrlRepository extends CrlRepository implements OnModuleDestroy {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  /** The most bytes of a CRL one crl_chunks row holds (CRL_CHUNK_BYTES; tests make it small). */
  protected readonly chunkBytes: number = CRL_CHUNK_BYTES;
  /** Chunk pruning still running (publishChunked). */
  private readonly pruning = new Set<Promise<void>>();

  /**
   * Pruning still running finishes before TypeORM closes the connection (at application shutdown, after this; the
   * checkpoint after a CRL is awaited by SqliteCheckpoints.close, TypeOrmTransactions' own hook).
   */
  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.pruning]);
  }

  /** Work the caller does not wait for, awaited at shutdown; a failure is left for the next CRL to redo. */
  private inBackground(work: Promise<void>): void {
    const running: Promise<void> = work.catch(() => undefined).finally(() => this.pruning.delete(running));
    this.pruning.add(running);
  }

  async latestInfo(authorityId: string): Promise<CrlInfo | null> {
    // Not the der column: a CRL of a million entries is ~50 MB of base64.
    const [row] = await this.db.sql<InfoRow>(`SELECT ${INFO_COLUMNS} FROM crls WHERE authority_id = ? ORDER BY crl_number DESC LIMIT 1`, [authorityId]);
    return row ? toInfo(row) : null;
  }

  /**
   * A chunked CRL is read one chunk per statement with a turn of the event loop between them (a CRL of a million entries
   * is 12 chunks), each copied into place as it arrives: the chunks of one CRL all have the size of the first but the
   * last, so the first and the last give the size of the whole. A CRL stored before crl_chunks is in its crls row.
   */
  async der(authorityId: string, crlNumber: number): Promise<Buffer | null> {
    const [row] = await this.db.sql<{ chunks: number | string }>('SELECT chunks FROM crls WHERE authority_id = ? AND crl_number = ?', [authorityId, crlNumber]);
    if (!row) return null;
    const chunks = Number(row.chunks);
    if (chunks === 0) {
      const [inline] = await this.db.sql<{ der: string | Buffer }>('SELECT der FROM crls WHERE authority_id = ? AND crl_number = ?', [authorityId, crlNumber]);
      if (!inline) return null;
      // SQLite stored the bytes as a BLOB, PostgreSQL (and CRLs stored before that) as base64 text.
      return Buffer.isBuffer(inline.der) ? inline.der : Buffer.from(inline.der, 'base64');
    }
    const first = await this.chunk(authorityId, crlNumber, 0);
    const last = chunks > 1 ? await this.chunk(authorityId, crlNumber, chunks - 1) : first;
    // Pruned while it was read (a newer CRL replaced it): as if it was not stored.
    if (!first || !last) return null;
    const der = Buffer.allocUnsafe(first.length * (chunks - 1) + last.length);
    first.copy(der, 0);
    last.copy(der, first.length * (chunks - 1));
    for (let seq = 1; seq < chunks - 1; seq++) {
      await yieldToEventLoop();
      const chunk = await this.chunk(authorityId, crlNumber, seq);
      if (!chunk) return null;
      if (chunk.length !== first.length) throw new Error(`CRL ${crlNumber} of authority ${authorityId}: chunk ${seq} has ${chunk.length} bytes, not ${first.length}`);
      chunk.copy(der, first.length * seq);
    }
    return der;
  }

  private async chunk(authorityId: string, crlNumber: number, seq: number): Promise<Buffer | null> {
    const [row] = await this.db.sql<{ bytes: Buffer | string }>('SELECT bytes FROM crl_chunks WHERE authority_id = ? AND crl_number = ? AND seq = ?', [authorityId, crlNumber, seq]);
    if (!row) return null;
    // PostgreSQL keeps the bytes as base64 text, decoded here: decode() in the server sent them back as bytea's hex
    // text, a third larger, and took 2.0–2.4 s for a million entries against 0.4 s (docs/benchmarks.md, "CRL").
    return typeof row.bytes === 'string' ? Buffer.from(row.bytes, 'base64') : row.bytes;
  }

  /**
   * The DER goes into crl_chunks first, one chunk per short transaction with a turn of the event loop between them, and
   * the crls row that makes the CRL current last: no statement writes more than CRL_CHUNK_BYTES, and a CRL is never
   * read half-written (der reads chunks only of a crls row). Chunks of a CRL that is not published (a newer one was, or
   * the write failed) are deleted; those a crash left behind go with the pruning after the next CRL (publishChunked).
   */
  async publish(crl: StoredCrl, pruneBelow: number): Promise<boolean> {
    // SQLite (a file in WAL mode): the WAL checkpoint that would follow these commits (copying the ~46 MB just written
    // into the database file) runs on a worker thread instead of in a commit on the event loop (docs/architecture.md "CRLs").
    const checkpoints = this.db.sqliteCheckpoints;
    return checkpoints ? checkpoints.deferringCheckpoints(() => this.publishChunked(crl, pruneBelow)) : this.publishChunked(crl, pruneBelow);
  }

  private async publishChunked(crl: StoredCrl, pruneBelow: number): Promise<boolean> {
    let stored = false;
    try {
      const chunks = await this.writeChunks(crl);
      stored = await this.insert(crl, pruneBelow, chunks);
    } finally {
      if (!stored) await this.deleteChunks(crl.authorityId, (number) => number === crl.crlNumber).catch(() => undefined);
    }
    // Chunks of CRLs no longer listed (pruned just now, or left by a crash or a lost race): best effort, in small steps,
    // after the answer (the next CRL's pruning takes what this one leaves).
    this.inBackground(this.deleteChunks(crl.authorityId, (number, listed) => number < crl.crlNumber && !listed));
    return stored;
  }

  /** The chunks of one CRL, each in a short transaction of its own (SQLite: taking its turn on the one connection). */
  private async writeChunks(crl: StoredCrl): Promise<number> {
    const value = this.db.isPostgres ? "encode(?::bytea, 'base64')" : '?';
    const sql = `INSERT INTO crl_chunks (authority_id, crl_number, seq, bytes) VALUES (?, ?, ?, ${value})`;
    let seq = 0;
    const size = this.chunkBytes;
    for (let offset = 0; offset < crl.der.length; offset += size, seq++) {
      if (seq > 0) await yieldToEventLoop();
      const chunk = crl.der.subarray(offset, Math.min(offset + size, crl.der.length));
      await this.db.run(() => this.db.sql(sql, [crl.authorityId, crl.crlNumber, seq, chunk]));
    }
    return seq;
  }

  /**
   * Deletes an authority's chunks whose CRL number `drop` selects (`listed`: a crls row has that number), one chunk per
   * statement with a turn of the event loop between them.
   */
  private async deleteChunks(authorityId: string, drop: (crlNumber: number, listed: boolean) => boolean): Promise<void> {
    const keys = await this.db.sql<{ crlNumber: number | string; seq: number | string; listed: number | string | boolean | null }>(
      `SELECT c.crl_number AS "crlNumber", c.seq AS seq, (SELECT 1 FROM crls l WHERE l.authority_id = c.authority_id AND l.crl_number = c.crl_number) AS listed
         FROM crl_chunks c WHERE c.authority_id = ? ORDER BY c.crl_number, c.seq`,
      [authorityId],
    );
    for (const key of keys) {
      const crlNumber = Number(key.crlNumber);
      if (!drop(crlNumber, key.listed !== null && key.listed !== undefined)) continue;
      await this.db.run(() => this.db.sql('DELETE FROM crl_chunks WHERE authority_id = ? AND crl_number = ? AND seq = ?', [authorityId, crlNumber, Number(key.seq)]));
      await yieldToEventLoop();
    }
  }

  private insert(crl: StoredCrl, pruneBelow: number, chunks: number): Promise<boolean> {
    return this.db.run(async () => {
      // PostgreSQL: the authority row orders publishers (SQLite transactions take turns on one connection anyway).
      if (this.db.isPostgres) await this.db.sql('SELECT id FROM authorities WHERE id = ? FOR UPDATE', [crl.authorityId]);
      const [newer] = await this.db.sql(
        'SELECT crl_number FROM crls WHERE authority_id = ? AND (crl_number > ? OR revocations_covered > ?) LIMIT 1',
        [crl.authorityId, crl.crlNumber, crl.revocationsCovered],
      );
      if (newer) return false;
      await this.db.sql(
        "INSERT INTO crls (authority_id, crl_number, this_update, next_update, revocations_covered, der, chunks) VALUES (?, ?, ?, ?, ?, '', ?)",
        [crl.authorityId, crl.crlNumber, crl.thisUpdate, crl.nextUpdate, crl.revocationsCovered, chunks],
      );
      // Their chunks are deleted after this commit, in small steps (publishChunked).
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
