import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Logger } from '@nestjs/common';

/** What `PRAGMA wal_checkpoint` reports: frames in the WAL, and how many of them are now in the database file. */
export interface CheckpointResult {
  log: number;
  checkpointed: number;
}

/** What the thread is sent: a checkpoint, numbered so that its answer settles this request and no other. */
export interface CheckpointRequest {
  id: number;
}

/** How a checkpoint ended. */
type CheckpointOutcome = ({ ok: true } & CheckpointResult) | { ok: false; message: string };

/** What the thread answers, with the request's id. */
export type CheckpointAnswer = { id: number } & CheckpointOutcome;

/** The part of better-sqlite3's connection used here. */
export interface SqliteCheckpointConnection {
  readonly name: string;
  readonly open: boolean;
  pragma(source: string, options: { simple: true }): unknown;
}

/** The thread, and the requests it has not answered yet (by id). */
interface CheckpointThread {
  worker: Worker;
  waiting: Map<number, (outcome: CheckpointOutcome) => void>;
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
 * WAL checkpoints off the event loop (docs/architecture.md, "Durable commits on SQLite"), and the one owner of the
 * service connection's `wal_autocheckpoint`.
 *
 * SQLite checkpoints on its own in the commit that grows the WAL past 1,000 pages: copying the WAL into the database
 * file and flushing both, for 5–50 ms on the event loop's thread, every few hundred issuances under load. Under load
 * a worker thread with a connection of its own does it instead, at most every CHECKPOINT_INTERVAL_MS, in a cycle of
 * two checkpoints (`cycle`): the first runs beside the service's commits and copies most of the WAL (however large:
 * after a CRL, tens of MB); the second takes a turn among the service's transactions, so no commit is written while it
 * copies the few frames appended meanwhile (requests are still parsed, signed and served), and the next commit starts
 * the WAL over instead of growing it. SQLite's own checkpoint remains, at SAFETY_NET_PAGES, except while a large write
 * runs (`deferringCheckpoints`: a CRL), which the thread checkpoints after.
 *
 * Every request to the thread carries an id that its answer echoes: an answer that comes after its request gave up
 * (CHECKPOINT_TIMEOUT_MS) settles nothing. A thread that stops (an error, an exit, `close`) fails the requests it has
 * not answered at once, and the next request starts a new one.
 */
export class SqliteCheckpoints {
  private readonly logger = new Logger('SqliteCheckpoints');
  private current: CheckpointThread | null = null;
  private lastId = 0;
  private lastStarted = 0;
  /** Commits counted since `windowStart`, in windows of CHECKPOINT_INTERVAL_MS. */
  private commits = 0;
  private windowStart = 0;
  private cycling = false;
  private failures = 0;
  /** Large writes (deferringCheckpoints) whose checkpoint has not settled yet: SQLite's own checkpoint is off meanwhile. */
  private deferring = 0;
  /** Checkpoints and deferred writes' checkpoints not settled yet: close waits for them. */
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly connection: SqliteCheckpointConnection,
    private readonly script = path.join(__dirname, 'sqlite-checkpoint.thread.js'),
    private readonly timeoutMs = CHECKPOINT_TIMEOUT_MS,
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
   * `write` (many MB: a CRL's chunks) with SQLite's own checkpoint off, which would otherwise run in one of its commits
   * on the event loop; then a checkpoint on the thread, which the caller does not wait for (`close` does). SQLite's own
   * checkpoint comes back once the last of the writes deferring it and their checkpoints are done.
   */
  async deferringCheckpoints<T>(write: () => Promise<T>): Promise<T> {
    if (this.deferring++ === 0) this.connection.pragma('wal_autocheckpoint = 0', { simple: true });
    try {
      return await write();
    } finally {
      const restored = this.run().then(() => {
        if (--this.deferring === 0 && this.connection.open) this.connection.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`, { simple: true });
      });
      this.track(restored).catch((err: Error) => this.logger.warn(`SQLite's own WAL checkpoint not restored: ${err.message}`));
    }
  }

  /**
   * One checkpoint on the thread: how many WAL frames there were and how many it copied, or null when it failed (or
   * after `close`). Never rejects (a failure is logged, and SQLite's own checkpoint remains).
   */
  run(): Promise<CheckpointResult | null> {
    this.lastStarted = Date.now();
    this.commits = 0;
    if (this.closed) return Promise.resolve(null);
    const thread = this.thread();
    const id = ++this.lastId;
    return this.track(
      new Promise<CheckpointResult | null>((resolve) => {
        const timer = setTimeout(() => finish({ ok: false, message: `no answer within ${this.timeoutMs} ms` }), this.timeoutMs);
        const finish = (answer: CheckpointOutcome) => {
          clearTimeout(timer);
          thread.waiting.delete(id);
          // The thread keeps the process alive only while it owes an answer.
          if (thread.waiting.size === 0) thread.worker.unref();
          if (answer.ok) this.failures = 0;
          // Logged once per run of failures, not once per checkpoint.
          else if (this.failures++ === 0) this.logger.warn(`WAL checkpoint on its thread failed (SQLite's own checkpoint remains): ${answer.message}`);
          resolve(answer.ok ? { log: answer.log, checkpointed: answer.checkpointed } : null);
        };
        thread.waiting.set(id, finish);
        thread.worker.ref();
        thread.worker.postMessage({ id } satisfies CheckpointRequest);
      }),
    );
  }

  /** Waits for the checkpoints still running (each settles within CHECKPOINT_TIMEOUT_MS), then ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running.size > 0) await Promise.all([...this.running]);
    const thread = this.current;
    this.current = null;
    await thread?.worker.terminate();
  }

  private track<T>(work: Promise<T>): Promise<T> {
    const forget = () => void this.running.delete(settled);
    const settled: Promise<void> = work.then(forget, forget);
    this.running.add(settled);
    return work;
  }

  private thread(): CheckpointThread {
    if (this.current) return this.current;
    const worker = new Worker(this.script, { workerData: { file: this.connection.name } });
    const thread: CheckpointThread = { worker, waiting: new Map() };
    // Whatever it has not answered fails now, not at its timeout; the next request starts a new thread.
    const stopped = (message: string) => {
      if (this.current === thread) this.current = null;
      for (const finish of [...thread.waiting.values()]) finish({ ok: false, message });
    };
    worker.on('message', (answer: CheckpointAnswer) => thread.waiting.get(answer.id)?.(answer));
    worker.on('error', (err) => {
      this.logger.warn(`WAL checkpoint thread stopped: ${err.message}`);
      stopped(err.message);
    });
    worker.on('exit', (code) => stopped(`the WAL checkpoint thread exited (code ${code})`));
    worker.unref();
    this.current = thread;
    return thread;
  }
}
