/**
 * Worker thread of a CRL build (docs/architecture.md "CRLs"). An entries job reads the authority's revoked, unexpired certificates
 * from one snapshot on a connection of its own, encodes them to DER and assembles the CRL's TBS around them in one
 * buffer, which it hands back (transferred, not copied) with the revocation counter of that snapshot. It holds no key:
 * the service signs the TBS.
 * Started by CrlWorker (crl-worker.ts); plain Node.js, no Nest.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../common/thread-priority';
import { assembleCrl, CrlEntriesEncoder, RevocationReason } from '../pki/crl';
import type { CrlWorkerJob, CrlWorkerOutcome } from './crl-worker';
import { numbered, REVOCATION_COUNT, REVOKED_PAGE } from './crl-queries';

/** Rows per keyset page: nothing else runs on this thread, pages only bound the rows held at once. */
const PAGE_SIZE = 20_000;

/** A row of REVOKED_PAGE as an array (raw rows: no object per row): serial, revokedAt, reason. */
type RevokedRow = [serial: string, revokedAt: string, reason: RevocationReason | null];
type Encode = (rows: RevokedRow[]) => void;

/** The part of better-sqlite3 used here (no type package is installed; typeorm-crl.repository.ts does the same). */
type SqliteDatabase = new (
  file: string,
  options: { readonly: boolean; fileMustExist: boolean },
) => { prepare(sql: string): { all(...params: unknown[]): unknown[]; raw(raw: boolean): { all(...params: unknown[]): unknown[] } }; exec(sql: string): void; close(): void };

/**
 * SQLite: a read-only connection of its own in one read transaction (WAL lets it read while the service's connection
 * writes): the counter and every page come from one snapshot.
 */
async function readSqlite(file: string, authorityId: string, now: string, encode: Encode): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Database = require('better-sqlite3') as SqliteDatabase;
  const reader = new Database(file, { readonly: true, fileMustExist: true });
  try {
    reader.exec('BEGIN');
    const [count] = reader.prepare(REVOCATION_COUNT).all(authorityId) as { n: number }[];
    const statement = reader.prepare(REVOKED_PAGE).raw(true);
    for (let after = ''; ; ) {
      const rows = statement.all(authorityId, after, now, PAGE_SIZE) as RevokedRow[];
      encode(rows);
      if (rows.length < PAGE_SIZE) break;
      after = rows[rows.length - 1][0];
    }
    reader.exec('COMMIT');
    return count ? Number(count.n) : 0;
  } finally {
    reader.close();
  }
}

/**
 * PostgreSQL: a client of its own in a read-only REPEATABLE READ transaction (one snapshot for the counter and every
 * page; nothing locked). The next page is asked for before the current one is encoded, so the server works meanwhile.
 */
async function readPostgres(url: string, authorityId: string, now: string, encode: Encode): Promise<number> {
  const { Client } = await import('pg');
  const client = new Client({ connectionString: url, application_name: 'fleet-pki crl' });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows: count } = await client.query<{ n: string | number }>(numbered(REVOCATION_COUNT), [authorityId]);
    const sql = numbered(REVOKED_PAGE);
    const page = (after: string) => client.query<RevokedRow>({ text: sql, values: [authorityId, after, now, PAGE_SIZE], rowMode: 'array' });
    for (let pending = page(''); ; ) {
      const { rows } = await pending;
      const full = rows.length === PAGE_SIZE;
      if (full) pending = page(rows[rows.length - 1][0]);
      encode(rows);
      if (!full) break;
    }
    await client.query('COMMIT');
    return count[0] ? Number(count[0].n) : 0;
  } finally {
    await client.end();
  }
}

async function buildEntries(job: CrlWorkerJob): Promise<CrlWorkerOutcome> {
  const entries = new CrlEntriesEncoder();
  const encode: Encode = (rows) => entries.addRows(rows);
  const { source, authorityId, now } = job;
  const revocationCount =
    source.driver === 'sqlite' ? await readSqlite(source.file, authorityId, now, encode) : await readPostgres(source.url, authorityId, now, encode);
  const count = entries.count;
  const { buffer, tbsStart, tbsEnd } = assembleCrl(job.frame, entries);
  return { ok: true, kind: 'entries', revocationCount, entries: count, buffer: buffer.buffer as ArrayBuffer, byteOffset: buffer.byteOffset, byteLength: buffer.byteLength, tbsStart, tbsEnd };
}

// Requests come first: on a busy machine the build yields the CPU to the service's event loop (docs/architecture.md "CRLs").
lowerThreadPriority();
buildEntries(workerData as CrlWorkerJob).then(
  (outcome) => parentPort!.postMessage(outcome, outcome.ok ? [outcome.buffer] : []),
  (err: Error) => parentPort!.postMessage({ ok: false, message: err.message } satisfies CrlWorkerOutcome),
);
