import { execFile } from 'node:child_process';
import { DataSource } from 'typeorm';
import { DatabaseConfig } from '../../../src/config/config';
import { OpenSslWorkspace } from '../openssl';

/**
 * What the crash test (docs/crash-safety.md) reads after the last restart, with openssl where a relying party would
 * use it, and from the database only for what no endpoint shows (the outbox).
 */

function openssl(ssl: OpenSslWorkspace, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { cwd: ssl.dir, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ status: code, output: `${stdout}${stderr}` });
    });
  });
}

/** A serial as a canonical lowercase hex number (openssl prints uppercase, sometimes with a leading 00). */
export function canonicalSerial(hex: string): string {
  return BigInt(`0x${hex.replace(/^0x/i, '')}`).toString(16);
}

async function inChunks<T, R>(items: T[], size: number, parallel: number, work: (chunk: T[], index: number) => Promise<R>): Promise<R[]> {
  const chunks = Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
  const results: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < chunks.length) {
        const index = next++;
        results[index] = await work(chunks[index], index);
      }
    }),
  );
  return results;
}

/**
 * `openssl verify -x509_strict` of every certificate (PEM) against the root and the issuing CA, many files per run.
 * Returns the certificates (by key) openssl did not answer `OK` for, with its words.
 */
export async function verifyAll(ssl: OpenSslWorkspace, rootPem: string, issuingPem: string, certificates: Map<string, string>): Promise<string[]> {
  const root = ssl.file('verify-root.pem', rootPem);
  const issuing = ssl.file('verify-issuing.pem', issuingPem);
  const entries = [...certificates.entries()];
  const failures = await inChunks(entries, 200, 2, async (chunk, index) => {
    const files = chunk.map(([key, pem], i) => ({ key, file: ssl.file(`leaf-${index}-${i}.pem`, pem) }));
    const result = await openssl(ssl, ['verify', '-x509_strict', '-CAfile', root, '-untrusted', issuing, ...files.map((f) => f.file)]);
    return files.filter((f) => !new RegExp(`^${f.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: OK$`, 'm').test(result.output)).map((f) => `${f.key}: ${result.output.slice(0, 300)}`);
  });
  return failures.flat();
}

/** The CRL (DER) read by openssl: its signature checked against the chain, and its entries (serial → reason text). */
export async function readCrl(ssl: OpenSslWorkspace, crlDer: Buffer, chainPem: string): Promise<{ verified: boolean; entries: Map<string, string>; output: string }> {
  const result = await openssl(ssl, ['crl', '-inform', 'DER', '-in', ssl.file('crash.crl', crlDer), '-noout', '-text', '-CAfile', ssl.file('crl-chain.pem', chainPem)]);
  const entries = new Map<string, string>();
  // Each entry: "Serial Number: <hex>", "Revocation Date: …", then "X509v3 CRL Reason Code:" and the reason on the next line.
  const blocks = result.output.split(/Serial Number: /).slice(1);
  for (const block of blocks) {
    const serial = /^([0-9A-Fa-f]+)/.exec(block)?.[1];
    if (!serial) continue;
    const reason = /CRL Reason Code:\s*\n\s*([^\n]+)/.exec(block)?.[1]?.trim() ?? 'none';
    entries.set(canonicalSerial(serial), reason);
  }
  return { verified: /verify OK/.test(result.output), entries, output: result.output.slice(0, 500) };
}

/**
 * `openssl ocsp` against the service for every serial (at most 100 CertIDs a request, the responder's limit), the
 * answers verified against the chain: serial → `good`/`revoked`/`unknown` and the reason of a revoked one.
 */
export async function askOcsp(ssl: OpenSslWorkspace, url: string, issuerPem: string, chainPem: string, serials: string[]): Promise<{ statuses: Map<string, { status: string; reason?: string }>; failures: string[] }> {
  const issuer = ssl.file('ocsp-issuer.pem', issuerPem);
  const chain = ssl.file('ocsp-chain.pem', chainPem);
  const statuses = new Map<string, { status: string; reason?: string }>();
  const failures: string[] = [];
  await inChunks(serials, 100, 2, async (chunk) => {
    const result = await openssl(ssl, ['ocsp', '-issuer', issuer, ...chunk.flatMap((s) => ['-serial', `0x${s}`]), '-url', url, '-CAfile', chain]);
    if (result.status !== 0 || !/Response verify OK/.test(result.output)) {
      failures.push(`openssl ocsp exited ${result.status}: ${result.output.slice(0, 500)}`);
      return;
    }
    // Per CertID: "0x<serial>: good|revoked|unknown", its times, and for a revoked one "Reason: <reason>".
    for (const block of result.output.split(/^(?=0x[0-9a-fA-F]+: )/m)) {
      const match = /^0x([0-9a-fA-F]+): (\w+)/.exec(block);
      if (!match) continue;
      statuses.set(canonicalSerial(match[1]), { status: match[2], reason: /Reason: (\w+)/.exec(block)?.[1] });
    }
  });
  return { statuses, failures };
}

/** Outbox jobs by kind and status, read from the service's database (no endpoint lists them). */
export async function outboxJobs(database: DatabaseConfig): Promise<{ kind: string; status: string; n: number }[]> {
  const rows = await readOutbox<{ kind: string; status: string; n: string | number }>(database, 'SELECT kind, status, COUNT(*) AS n FROM outbox_jobs GROUP BY kind, status ORDER BY kind, status');
  return rows.map((r) => ({ kind: r.kind, status: r.status, n: Number(r.n) }));
}

/** The dead-lettered jobs with what killed them: a failing check names the cause, not only a count. */
export async function deadOutboxJobs(database: DatabaseConfig): Promise<{ kind: string; target: string; attempts: number; lastError: string }[]> {
  const rows = await readOutbox<{ kind: string; target: string; attempts: string | number; lastError: string }>(
    database,
    `SELECT kind, target_id AS target, attempts, last_error AS "lastError" FROM outbox_jobs WHERE status = 'dead' ORDER BY created_at, id`,
  );
  return rows.map((r) => ({ ...r, attempts: Number(r.attempts) }));
}

async function readOutbox<T>(database: DatabaseConfig, sql: string): Promise<T[]> {
  const source = new DataSource(
    database.driver === 'sqlite' ? { type: 'better-sqlite3', database: database.file, readonly: true, timeout: 5000 } : { type: 'postgres', url: database.url, poolSize: 1 },
  );
  await source.initialize();
  try {
    return (await source.query(sql)) as T[];
  } finally {
    await source.destroy();
  }
}
