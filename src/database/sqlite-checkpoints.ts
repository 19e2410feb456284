import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Logger } from '@nestjs/common';

/** What `PRAGMA wal_checkpoint` reports: frames in the WAL, and how many of them are now in the database file. */
export interface CheckpointResult {
  log: number;
  checkpointed: number;
}

type CheckpointAnswer = ({ ok: true } & CheckpointResult) | { ok: false; message: string };

/** The part of better-sqlite3's connection used here. */
export interface SqliteCheckpointConnection {
  readonly name: string;
  pragma(source: string, options: { simple: true }): unknown;
}

/** At most one checkpoint started per this many ms while commits happen. */
const CHECKPOINT_INTERVAL_MS = 250;
/**
 * ... and only once this many commits came within one CHECKPOINT_INTERVAL_MS (64 a second): a service under load. An
 * idle service, whose background jobs commit now and then, never starts the thread (it costs ~15 MB of resident
 * memory: docs/runtime.md, "Memory"); SQLite's own checkpoint suffices there.
 */
const CHECKPOINT_MIN_COMMITS = 16;
/** A checkpoint that has not answered by then no longer holds the service's writes back (it may still finish). */
const CHECKPOINT_TIMEOUT_MS = 5_000;
/**
 * SQLite's own checkpoint after a commit, on the event loop: when the WAL reaches this many pages (~16 MB of 4 KiB
 * pages). Under load the thread keeps the WAL well below; at low load (a stall of a few ms hurts no one there) and if
 * the thread failed, this is what checkpoints.
 */
const SAFETY_NET_PAGES = 4_000;

/**
 * WAL checkpoints off the event loop (docs/architecture.md, "Durable commits on SQLite").
 *
 * SQLite checkpoints on its own in the commit that grows the WAL past 1,000 pages: copying the WAL into the database
 * file and flushing both, for 5–50 ms on the event loop's thread, every few hundred issuances under load. Under load
 * a worker thread with a connection of its own does it instead, at most every CHECKPOINT_INTERVAL_MS, in a cycle of
 * two checkpoints (`cycle`): the first runs beside the service's commits and copies most of the WAL (however large:
 * after a CRL, tens of MB); the second takes a turn among the service's transactions, so no commit is written while it
 * copies the few frames appended meanwhile (requests are still parsed, signed and served), and the next commit starts
 * the WAL over instead of growing it. SQLite's own checkpoint remains, at SAFETY_NET_PAGES.
 */
export class SqliteCheckpoints {
  private readonly logger = new Logger('SqliteCheckpoints');
  private worker: Worker | null = null;
  private lastStarted = 0;
  /** Commits counted since `windowStart`, in windows of CHECKPOINT_INTERVAL_MS. */
  private commits = 0;
  private windowStart = 0;
  private cycling = false;
  private failures = 0;

  constructor(
    private readonly connection: SqliteCheckpointConnection,
    private readonly script = path.join(__dirname, 'sqlite-checkpoint.thread.js'),
  ) {
    connection.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`, { simple: true });
  }

  /** Called after each commit: whether a checkpoint cycle should start. */
  due(now = Date.now()): boolean {
    if (now - this.windowStart >= CHECKPOINT_INTERVAL_MS) {
      this.windowStart = now;
      this.commits = 0;
    }
    return ++this.commits >= CHECKPOINT_MIN_COMMITS && !this.cycling && now - this.lastStarted >= CHECKPOINT_INTERVAL_MS;
  }

  /**
   * A checkpoint beside the commits, then one in a turn of their own that `inTurn` gives it (no commit runs until the
   * step it is given settles). Never rejects.
   */
  async cycle(inTurn: (step: () => Promise<unknown>) => Promise<unknown>): Promise<void> {
    this.cycling = true;
    try {
      await this.run();
      await inTurn(() => this.run());
    } finally {
      this.cycling = false;
    }
  }

  /**
   * One checkpoint on the thread: how many WAL frames there were and how many it copied, or null when it failed. Never
   * rejects (a failure is logged, and SQLite's own checkpoint remains).
   */
  run(): Promise<CheckpointResult | null> {
    this.lastStarted = Date.now();
    this.commits = 0;
    return new Promise<CheckpointResult | null>((resolve) => {
      const worker = this.thread();
      const timer = setTimeout(() => finish({ ok: false, message: `no answer within ${CHECKPOINT_TIMEOUT_MS} ms` }), CHECKPOINT_TIMEOUT_MS);
      const finish = (answer: CheckpointAnswer) => {
        clearTimeout(timer);
        worker.off('message', finish);
        worker.unref();
        if (answer.ok) this.failures = 0;
        // Logged once per run of failures, not once per checkpoint.
        else if (this.failures++ === 0) this.logger.warn(`WAL checkpoint on its thread failed (SQLite's own checkpoint remains): ${answer.message}`);
        resolve(answer.ok ? { log: answer.log, checkpointed: answer.checkpointed } : null);
      };
      worker.on('message', finish);
      worker.ref();
      worker.postMessage('checkpoint');
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private thread(): Worker {
    if (!this.worker) {
      const worker = new Worker(this.script, { workerData: { file: this.connection.name } });
      worker.on('error', (err) => {
        this.logger.warn(`WAL checkpoint thread stopped: ${err.message}`);
        worker.emit('message', { ok: false, message: err.message } satisfies CheckpointAnswer);
        if (this.worker === worker) this.worker = null;
      });
      worker.unref();
      this.worker = worker;
    }
    return this.worker;
  }
}
