import { Injectable } from '@nestjs/common';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AssembledCrl, CrlFrame } from '../pki/crl';
import { CrlSnapshotSource } from './crl.repository';

/** A CRL build's reading and encoding (structured clone: the frame's bytes arrive as Uint8Arrays). */
export interface CrlEntriesJob {
  source: CrlSnapshotSource;
  authorityId: string;
  /** ISO time: certificates expired by then are left off. */
  now: string;
  frame: CrlFrame;
}

/** What a worker thread is given: a CRL build's entries. */
export type CrlWorkerJob = { kind: 'entries' } & CrlEntriesJob;

/** What it answers: for entries, the assembled TBS, its ArrayBuffer transferred (no copy); or why it failed. */
export type CrlWorkerOutcome =
  | { ok: true; kind: 'entries'; revocationCount: number; entries: number; buffer: ArrayBuffer; byteOffset: number; byteLength: number; tbsStart: number; tbsEnd: number }
  | { ok: false; message: string };

export interface BuiltCrlEntries {
  /** The authority's revocation counter in the snapshot the entries were read from. */
  revocationCount: number;
  entries: number;
  tbs: AssembledCrl;
}

/**
 * Runs the heavy parts of a CRL build on a worker thread (crl-worker.thread.ts), so they never hold up the service's
 * event loop (docs/architecture.md "CRLs"): reading and encoding its entries. One short-lived thread per job, ended
 * when it answers. (The WAL checkpoint after a CRL is stored on SQLite runs on SqliteCheckpoints' thread.)
 */
@Injectable()
export class CrlWorker {
  /** The thread's script, beside this file once compiled. */
  protected readonly script: string = path.join(__dirname, 'crl-worker.thread.js');

  async build(job: CrlEntriesJob): Promise<BuiltCrlEntries> {
    const outcome = await this.run({ kind: 'entries', ...job });
    const buffer = Buffer.from(outcome.buffer, outcome.byteOffset, outcome.byteLength);
    return { revocationCount: outcome.revocationCount, entries: outcome.entries, tbs: { buffer, tbsStart: outcome.tbsStart, tbsEnd: outcome.tbsEnd } };
  }

  private run(job: CrlWorkerJob): Promise<Extract<CrlWorkerOutcome, { ok: true }>> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(this.script, { workerData: job });
      let settled = false;
      const settle = (outcome: CrlWorkerOutcome | Error) => {
        if (settled) return;
        settled = true;
        void worker.terminate();
        if (outcome instanceof Error) reject(outcome);
        else if (!outcome.ok) reject(new Error(outcome.message));
        else resolve(outcome);
      };
      worker.once('message', settle);
      worker.once('error', settle);
      worker.once('exit', (code) => settle(new Error(`the CRL worker exited (code ${code}) without an answer`)));
    });
  }
}
