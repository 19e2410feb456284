/**
 * Worker thread of SqliteCheckpoints (sqlite-checkpoints.ts): copies the SQLite WAL into the database file on a
 * connection of its own, so that the service's event loop never waits for it. Plain Node.js, no Nest.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../common/thread-priority';
import type { CheckpointAnswer, CheckpointRequest } from './sqlite-checkpoints';

/** The part of better-sqlite3 used here (no type package is installed). */
type SqliteDatabase = new (file: string, options: { fileMustExist: boolean }) => {
  pragma(source: string): unknown;
};

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Database = require('better-sqlite3') as SqliteDatabase;
// Background work: on a busy machine the service's event loop comes first.
lowerThreadPriority();
const db = new Database((workerData as { file: string }).file, { fileMustExist: true });

// Every answer carries its request's id: SqliteCheckpoints settles that request with it, and no other.
parentPort!.on('message', ({ id }: CheckpointRequest) => {
  try {
    // PASSIVE: waits for no lock. The service starts no write meanwhile (checkpoints take a turn among its transactions),
    // so the whole WAL is copied and the next write starts it over from the beginning instead of growing it.
    const [result] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    parentPort!.postMessage({ id, ok: true, log: result.log, checkpointed: result.checkpointed } satisfies CheckpointAnswer);
  } catch (err) {
    parentPort!.postMessage({ id, ok: false, message: (err as Error).message } satisfies CheckpointAnswer);
  }
});
