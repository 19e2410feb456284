import { closeSync, fdatasync as fdatasyncCallback, fstatSync, openSync } from 'node:fs';
import { Logger } from '@nestjs/common';

/** The part of better-sqlite3's connection used here (TypeORM's driver holds it). */
export interface SqliteWalConnection {
  readonly name: string;
  readonly memory: boolean;
  readonly open: boolean;
  pragma(source: string, options: { simple: true }): unknown;
  prepare(sql: string): { get(): unknown };
}

/** Flushes a file's data to stable storage (fs.fdatasync; a test may watch or slow it). */
export type Flush = (fd: number) => Promise<void>;

const fdatasync: Flush = (fd) => new Promise((resolve, reject) => fdatasyncCallback(fd, (err) => (err ? reject(err) : resolve())));

/** How often writes made outside a transaction (no caller waits for them) are flushed at the latest. */
const BACKGROUND_FLUSH_MS = 200;

/**
 * Durable SQLite commits without stalling the event loop (docs/architecture.md, "Durable commits on SQLite").
 *
 * better-sqlite3 runs every statement on the event loop's thread. With `synchronous=FULL` a COMMIT waits there for
 * the fsync of the WAL (1–2 ms, longer on slow disks), and nothing else in the process runs meanwhile. Instead the
 * connection commits with `synchronous=NORMAL` (in WAL mode: the commit's frames are written to the WAL, not yet
 * flushed; the database can never be corrupted by a crash, only the newest commits lost by a power failure) and
 * `TypeOrmTransactions` answers the transaction's caller only after `durable()`: an fdatasync of the WAL file on
 * libuv's thread pool that started after the commit. What the caller was told is committed is on stable storage, as
 * with FULL; meanwhile the event loop serves other requests and the next transaction writes its frames.
 *
 * One flush covers every commit before it (the WAL is appended in order, and SQLite flushes it before a checkpoint
 * copies it into the database file), so callers arriving while one runs share the next one. Writes outside a
 * transaction (background bookkeeping: no caller waits for them) are flushed within BACKGROUND_FLUSH_MS.
 *
 * Only for a file database in WAL mode; anything else keeps SQLite's own settings (`forConnection` gives null).
 */
export class SqliteWalSync {
  private readonly logger = new Logger('SqliteWalSync');
  private fd: number | null = null;
  /** Calls of durable() so far, and how many of them the flush in progress (or the last) covers. */
  private requested = 0;
  private flushing = false;
  private readonly waiters: { ticket: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** close() waiting for the flush in progress to end before it closes the descriptor that flush uses. */
  private readonly idle: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private changesFlushed = 0;
  private readonly totalChangesStatement: { get(): unknown };

  private constructor(
    private readonly connection: SqliteWalConnection,
    private readonly flush: Flush,
  ) {
    connection.pragma('synchronous = NORMAL', { simple: true });
    this.totalChangesStatement = connection.prepare('SELECT total_changes() AS n');
    this.changesFlushed = this.totalChanges();
    this.timer = setInterval(() => this.flushBackgroundWrites(), BACKGROUND_FLUSH_MS);
    this.timer.unref();
  }

  /** For a file database in WAL mode: switches the connection to NORMAL and flushes on demand; otherwise null. */
  static forConnection(connection: SqliteWalConnection, flush: Flush = fdatasync): SqliteWalSync | null {
    if (connection.memory) return null;
    if (String(connection.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return null;
    return new SqliteWalSync(connection, flush);
  }

  /** Resolves once everything committed before this call is on stable storage. */
  durable(): Promise<void> {
    const ticket = ++this.requested;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ ticket, resolve, reject }));
    this.pump();
    return done;
  }

  /** Flushes what is left and stops the background flushes (before the connection closes). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    // A failed flush is logged where it happens; closing goes on (SQLite checkpoints the WAL as the connection closes).
    if (this.connection.open) await this.durable().catch(() => undefined);
    // A caller that came after ours (a background write during shutdown) may have started the next flush on this
    // descriptor: closing it now would fail that flush (EBADF), or flush whatever file reused the number.
    while (this.flushing) await new Promise<void>((resolve) => this.idle.push(resolve));
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private pump(): void {
    if (this.flushing || this.waiters.length === 0) return;
    this.flushing = true;
    // Everyone who asked before this flush starts is covered by it; later callers wait for the next one.
    const covered = this.requested;
    this.flushOnce().then(
      () => this.settle(covered, (waiter) => waiter.resolve()),
      (err: unknown) => {
        this.logger.error(`flushing the SQLite WAL failed: ${(err as Error).message}`);
        this.settle(covered, (waiter) => waiter.reject(err));
      },
    );
  }

  private settle(covered: number, answer: (waiter: (typeof this.waiters)[number]) => void): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n].ticket <= covered) n++;
    for (const waiter of this.waiters.splice(0, n)) answer(waiter);
    this.flushing = false;
    this.pump();
    if (!this.flushing) for (const resolve of this.idle.splice(0)) resolve();
  }

  private async flushOnce(): Promise<void> {
    const fd = this.walDescriptor();
    if (fd !== null) await this.flush(fd);
  }

  /**
   * The WAL file, opened once; opened again if SQLite replaced it (it deletes the WAL when the last connection to the
   * database closes). No WAL file means nothing was ever committed to one.
   */
  private walDescriptor(): number | null {
    if (this.fd !== null && fstatSync(this.fd).nlink > 0) return this.fd;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    try {
      this.fd = openSync(`${this.connection.name}-wal`, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return this.fd;
  }

  private flushBackgroundWrites(): void {
    if (!this.connection.open) return;
    const changes = this.totalChanges();
    if (changes === this.changesFlushed) return;
    this.changesFlushed = changes;
    this.durable().catch(() => undefined);
  }

  private totalChanges(): number {
    return Number((this.totalChangesStatement.get() as { n: number }).n);
  }
}
