import { Injectable } from '@nestjs/common';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AssembledCrl, CrlFrame } from '../pki/crl';
import { CrlSnapshotSource } from './crl.repository';

/** What the worker thread is given (structured clone: the frame's bytes arrive as Uint8Arrays). */
export interface CrlEntriesJob {
  source: CrlSnapshotSource;
  authorityId: string;
  /** ISO time: certificates expired by then are left off. */
  now: string;
  frame: CrlFrame;
}

/** What it answers: the assembled TBS, its ArrayBuffer transferred (no copy), or why it failed. */
export type CrlEntriesOutcome =
  | { ok: true; revocationCount: number; entries: number; buffer: ArrayBuffer; byteOffset: number; byteLength: number; tbsStart: number; tbsEnd: number }
  | { ok: false; message: string };

export interface BuiltCrlEntries {
  /** The authority's revocation counter in the snapshot the entries were read from. */
  revocationCount: number;
  entries: number;
  tbs: AssembledCrl;
}

/**
 * Runs one CRL build's reading and encoding on a worker thread (crl-entries.worker.ts), so a million rows never hold
 * up the service's event loop (docs/architecture.md "CRLs"). One worker per build, ended when it answers.
 */
@Injectable()
export class CrlEntriesWorker {
  /** The worker's script, beside this file once compiled. */
  protected readonly script: string = path.join(__dirname, 'crl-entries.worker.js');

  build(job: CrlEntriesJob): Promise<BuiltCrlEntries> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(this.script, { workerData: job });
      let settled = false;
      const settle = (outcome: CrlEntriesOutcome | Error) => {
        if (settled) return;
        settled = true;
        void worker.terminate();
        if (outcome instanceof Error) return reject(outcome);
        if (!outcome.ok) return reject(new Error(outcome.message));
        const buffer = Buffer.from(outcome.buffer, outcome.byteOffset, outcome.byteLength);
        resolve({ revocationCount: outcome.revocationCount, entries: outcome.entries, tbs: { buffer, tbsStart: outcome.tbsStart, tbsEnd: outcome.tbsEnd } });
      };
      worker.once('message', settle);
      worker.once('error', settle);
      worker.once('exit', (code) => settle(new Error(`the CRL worker exited (code ${code}) without an answer`)));
    });
  }
}
