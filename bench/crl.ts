/**
 * CRL benchmark (docs/benchmarks.md "CRL"). Two modes:
 *   --sizes 1000,10000,50000   in-process: build and sign CRLs of n entries, per entry, to show it stays linear;
 *   (default) --entries N      the service: N revoked certificates of one issuing CA seeded straight into its
 *                              database (default 1,000,000), then one CRL rebuild over HTTP, measured for time, size,
 *                              the service's peak RSS, openssl parse/verify/entry count, and issuance p99 during the
 *                              rebuild against p99 without it. --db sqlite|postgres (postgres: FLEET_PKI_TEST_PG_URL),
 *                              --concurrency C issuance clients (default 8), --baseline B issuances for the reference.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Client } from 'pg';
import { CrlEntry, signCrl } from '../src/pki/crl';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';
import { buildCsr } from '../tools/csr-builder';
import { bearer, closedLoop, option, percentile, processMemory, ProcessMemory, processTreeMemory, startService } from './support';

export async function crl(): Promise<void> {
  if (process.argv.includes('--sizes')) return inProcess();
  return service();
}

async function inProcess(): Promise<void> {
  const sizes = option('sizes', '1000,10000,50000').split(',').map(Number);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer = buildName({ commonName: 'Bench CA' });
  for (const size of sizes) {
    const entries: CrlEntry[] = Array.from({ length: size }, () => ({ serial: randomBytes(20), revokedAt: new Date(), reason: 'keyCompromise' }));
    const started = performance.now();
    const der = await signCrl(
      { issuer, issuerKeyId: randomBytes(20), crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86400_000), entries },
      key,
    );
    const ms = performance.now() - started;
    console.log(`crl: ${size} entries → ${(der.length / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms (${((ms * 1000) / size).toFixed(1)} µs/entry)`);
  }
}

/** The columns every certificates row needs; the seeded rows are never parsed, so their DER is a placeholder. */
const SEED_COLUMNS =
  'id, authority_id, serial, fingerprint, profile, subject, status, not_before, not_after, issued_at, public_key_sha256, key_description, certificate_der, validity_clamped, revoked_at, revocation_reason, iot_status';

/** The part of better-sqlite3 used here (it ships no types). */
interface SqliteDatabase {
  prepare(sql: string): { run(...params: unknown[]): unknown };
  transaction(work: () => void): () => void;
  close(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Database = require('better-sqlite3') as new (file: string, options: { timeout: number }) => SqliteDatabase;

/** N revoked certificates of `authorityId` in one statement (recursive CTE), serials 5000…<i in hex> (20 bytes). */
function seedSqlite(file: string, authorityId: string, n: number, notAfter: string, revokedAt: string): void {
  const db = new Database(file, { timeout: 60_000 });
  try {
    db.transaction(() => {
      db.prepare(
        `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
         INSERT INTO certificates (${SEED_COLUMNS})
         SELECT printf('00000000-0000-4000-8000-%012d', i), ?, '5' || printf('%039x', i), printf('%064x', i), 'device', 'CN=seeded',
                'revoked', ?, ?, ?, printf('%064x', i), 'ec:P-256', 'AA==', 0, ?,
                CASE i % 3 WHEN 0 THEN 'keyCompromise' WHEN 1 THEN 'superseded' ELSE 'unspecified' END, 'none'
         FROM seq`,
      ).run(n, authorityId, revokedAt, notAfter, revokedAt, revokedAt);
      db.prepare('UPDATE authorities SET revocation_count = revocation_count + ? WHERE id = ?').run(n, authorityId);
    })();
  } finally {
    db.close();
  }
}

async function seedPostgres(url: string, authorityId: string, n: number, notAfter: string, revokedAt: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO certificates (${SEED_COLUMNS})
       SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'), $1, '5' || lpad(to_hex(i), 39, '0'), lpad(to_hex(i), 64, '0'), 'device', 'CN=seeded',
              'revoked', $2, $3, $2, lpad(to_hex(i), 64, '0'), 'ec:P-256', 'AA==', false, $2,
              CASE i % 3 WHEN 0 THEN 'keyCompromise' WHEN 1 THEN 'superseded' ELSE 'unspecified' END, 'none'
       FROM generate_series(1, $4::int) AS i`,
      [authorityId, revokedAt, notAfter, n],
    );
    await client.query('UPDATE authorities SET revocation_count = revocation_count + $1 WHERE id = $2', [n, authorityId]);
    await client.query('COMMIT');
    await client.query('ANALYZE certificates');
  } finally {
    await client.end();
  }
}

/**
 * Resident memory of the service now (VmRSS) or at its peak (VmHWM), in MiB: of its one process, or, with WORKERS > 1
 * (PostgreSQL's default), summed over the primary and its workers (peaks summed: an upper bound of the total).
 */
function serviceMiB(pid: number, field: 'rssMb' | 'hwmMb'): number {
  return sumMiB(processTreeMemory(pid), field);
}

/** As serviceMiB, over processes already found: reads only their /proc status files (no pgrep, no child process). */
function processesMiB(pids: number[], field: 'rssMb' | 'hwmMb'): number {
  return sumMiB(pids.map(processMemory).filter((m): m is ProcessMemory => m !== undefined), field);
}

function sumMiB(tree: ProcessMemory[], field: 'rssMb' | 'hwmMb'): number {
  return tree.length ? tree.reduce((sum, m) => sum + m[field], 0) : NaN;
}

/** The largest single process's peak (the worker that built the CRL, with WORKERS > 1), MiB. */
function largestProcessPeakMiB(pid: number): number {
  return Math.max(...processTreeMemory(pid).map((m) => m.hwmMb));
}

/** Counts "Serial Number:" lines of `openssl crl -text`, streamed (a million entries is ~100 MB of text). */
async function opensslEntryCount(file: string): Promise<{ ok: boolean; entries: number }> {
  const textFile = `${file}.txt`;
  const run = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text', '-out', textFile], { encoding: 'utf8' });
  if (run.status !== 0) return { ok: false, entries: 0 };
  let entries = 0;
  for await (const line of createInterface({ input: fs.createReadStream(textFile) })) if (line.includes('Serial Number:')) entries++;
  fs.rmSync(textFile, { force: true });
  return { ok: true, entries };
}

async function service(): Promise<void> {
  const entries = Number(option('entries', '1000000'));
  const driver = option('db', 'sqlite');
  const concurrency = Number(option('concurrency', '8'));
  const baselineCount = Number(option('baseline', '1500'));
  if (!Number.isSafeInteger(entries) || entries < 1 || entries > 20_000_000) throw new Error('--entries must be 1..20000000');
  if (driver !== 'sqlite' && driver !== 'postgres') throw new Error('--db must be sqlite or postgres');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-crl-'));
  let databaseUrl: string;
  let dropDatabase = async () => {};
  if (driver === 'postgres') {
    const admin = process.env.FLEET_PKI_TEST_PG_URL;
    if (!admin) throw new Error('--db postgres needs FLEET_PKI_TEST_PG_URL');
    const name = `fleetpki_bench_crl_${Date.now().toString(36)}`;
    const adminClient = new Client({ connectionString: admin });
    await adminClient.connect();
    await adminClient.query(`CREATE DATABASE ${name}`);
    await adminClient.end();
    const url = new URL(admin);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      const c = new Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  } else {
    databaseUrl = `sqlite:${path.join(work, 'bench.sqlite')}`;
  }
  const svc = await startService({ DATABASE_URL: databaseUrl, ...(driver === 'postgres' ? { FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex') } : {}) });
  const pid = svc.pid;
  const call = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${svc.baseUrl}${route}`, {
      method,
      headers: { ...bearer(svc.adminKey), ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return res;
  };
  /** The service's event-loop delay since the previous scrape (prom-client resets its histogram on each). */
  const eventLoopLag = async (): Promise<{ maxMs: number; p99Ms: number }> => {
    const text = await (await fetch(`${svc.baseUrl}/metrics`)).text();
    const seconds = (name: string) => Number(new RegExp(`^fleetpki_nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { maxMs: round(seconds('max') * 1000), p99Ms: round(seconds('p99') * 1000) };
  };
  try {
    const root = (await (await call('POST', '/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } })).json()) as { id: string };
    const caRes = await call('POST', '/v1/authorities', { name: 'Bench Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Issuing' } });
    if (caRes.status !== 201) throw new Error(`could not create the CA: ${await caRes.text()}`);
    const ca = (await caRes.json()) as { id: string; certificatePem: string };
    const caFile = path.join(work, 'ca.pem');
    fs.writeFileSync(caFile, ca.certificatePem);
    const crlPath = `/v1/authorities/${ca.id}/crl`;
    if ((await call('GET', crlPath)).status !== 200) throw new Error('first CRL failed');

    const seedStarted = performance.now();
    const now = Date.now();
    const notAfter = new Date(now + 365 * 86_400_000).toISOString();
    const revokedAt = new Date(now - 60_000).toISOString();
    if (driver === 'postgres') await seedPostgres(databaseUrl, ca.id, entries, notAfter, revokedAt);
    else seedSqlite(databaseUrl.slice('sqlite:'.length), ca.id, entries, notAfter, revokedAt);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    console.log(`crl (${driver}): seeded ${entries} revoked certificates in ${seedSeconds.toFixed(1)} s`);

    // Issuance: precomputed CSRs, a closed loop of `concurrency` clients.
    const csrs = Array.from({ length: baselineCount * 4 + 400 }, (_, i) => buildCsr({ commonName: `bench-${i}` }));
    let nextCsr = 0;
    const failures: string[] = [];
    const issueOne = async () => {
      const i = nextCsr++ % csrs.length;
      const res = await call('POST', '/v1/certificates', { authorityId: ca.id, csr: csrs[i], profile: 'device', thingName: `bench-${i}-${nextCsr}` });
      if (res.status !== 201) failures.push(`${res.status} ${(await res.text()).slice(0, 200)}`);
      else await res.arrayBuffer();
    };
    await closedLoop(200, concurrency, issueOne); // warm-up
    await eventLoopLag(); // resets the service's event-loop delay histogram
    const baseline = await closedLoop(baselineCount, concurrency, issueOne);
    const lagBaseline = await eventLoopLag();
    const baselineSorted = [...baseline.latenciesMs].sort((a, b) => a - b);

    // The rebuild, with issuance running alongside; the service's peak RSS from a reset high-water mark.
    const rssBeforeMiB = serviceMiB(pid, 'rssMb');
    for (const { pid: each } of processTreeMemory(pid)) fs.writeFileSync(`/proc/${each}/clear_refs`, '5');
    let sampledPeakMiB = rssBeforeMiB;
    // The process tree found once: a pgrep (spawnSync) every 25 ms blocked this process's event loop, whose clients'
    // latencies are the p99 measured, and took a core's worth of CPU from the service during the rebuild.
    const servicePids = processTreeMemory(pid).map((m) => m.pid);
    const sampler = setInterval(() => (sampledPeakMiB = Math.max(sampledPeakMiB, processesMiB(servicePids, 'rssMb'))), 25);
    let rebuilding = true;
    const during: number[] = [];
    const loops = Array.from({ length: concurrency }, async () => {
      while (rebuilding) {
        const t0 = performance.now();
        await issueOne();
        if (rebuilding) during.push(performance.now() - t0);
      }
    });
    const started = performance.now();
    const res = await call('GET', crlPath);
    const der = Buffer.from(await res.arrayBuffer());
    const buildSeconds = (performance.now() - started) / 1000;
    rebuilding = false;
    await Promise.all(loops);
    const lagDuring = await eventLoopLag();
    clearInterval(sampler);
    const peakMiB = Math.max(serviceMiB(pid, 'hwmMb'), sampledPeakMiB);
    const processPeakMiB = largestProcessPeakMiB(pid);
    const processes = processTreeMemory(pid).length;
    if (res.status !== 200) throw new Error(`CRL rebuild failed: ${res.status}`);
    const duringSorted = [...during].sort((a, b) => a - b);

    const cachedStarted = performance.now();
    const again = await call('GET', crlPath);
    const cachedBytes = (await again.arrayBuffer()).byteLength;
    const cachedMs = performance.now() - cachedStarted;

    const after = await closedLoop(baselineCount, concurrency, issueOne);
    const afterSorted = [...after.latenciesMs].sort((a, b) => a - b);

    const crlFile = path.join(work, 'bench.crl');
    fs.writeFileSync(crlFile, der);
    const parse = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout'], { encoding: 'utf8' });
    const verify = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', caFile, '-noout'], { encoding: 'utf8' });
    const counted = await opensslEntryCount(crlFile);

    const p99Base = percentile(baselineSorted, 99);
    const p99During = percentile(duringSorted, 99);
    const result = {
      bench: 'crl',
      mode: 'service',
      driver,
      at: new Date().toISOString(),
      entries,
      concurrency,
      seedSeconds: round(seedSeconds),
      buildSeconds: round(buildSeconds),
      crlBytes: der.length,
      crlMiB: round(der.length / 1048576),
      cachedGetMs: round(cachedMs),
      cachedBytesEqual: cachedBytes === der.length,
      serviceRssBeforeMiB: round(rssBeforeMiB),
      servicePeakRssMiB: round(peakMiB),
      serviceProcesses: processes,
      largestProcessPeakRssMiB: round(processPeakMiB),
      opensslParseOk: parse.status === 0,
      opensslVerifyOk: verify.status === 0 && /verify OK/.test(`${verify.stdout}${verify.stderr}`),
      opensslEntries: counted.entries,
      issuance: {
        baseline: { count: baseline.latenciesMs.length, p50Ms: round(percentile(baselineSorted, 50)), p99Ms: round(p99Base) },
        duringRebuild: { count: during.length, p50Ms: round(percentile(duringSorted, 50)), p99Ms: round(p99During) },
        after: { count: after.latenciesMs.length, p50Ms: round(percentile(afterSorted, 50)), p99Ms: round(percentile(afterSorted, 99)) },
        p99Ratio: round(p99During / p99Base),
        failures: failures.length,
      },
      // The event-loop delay of the process answering /metrics (the only one on SQLite; one of them on PostgreSQL),
      // from its prom-client histogram, reset by each scrape: during the baseline issuances, and during the rebuild.
      eventLoopLag: { baseline: lagBaseline, duringRebuild: lagDuring },
      goals: { buildSeconds: 5, peakRssMiB: 512, p99Ratio: 2 },
    };
    console.log(
      `crl (${driver}): ${entries} entries → ${result.crlMiB} MiB DER, rebuilt in ${result.buildSeconds} s (goal ≤ 5), service peak RSS ${result.servicePeakRssMiB} MiB ` +
        `(before ${result.serviceRssBeforeMiB}; ${result.serviceProcesses} process(es), largest peak ${result.largestProcessPeakRssMiB}; goal ≤ 512), openssl parse ${result.opensslParseOk ? 'OK' : 'FAILED'}, verify ${result.opensslVerifyOk ? 'OK' : 'FAILED'}, ` +
        `${counted.entries} entries listed`,
    );
    console.log(
      `crl (${driver}): issuance p99 ${round(p99Base)} ms without rebuild, ${round(p99During)} ms during it (${during.length} issuances) → ratio ${result.issuance.p99Ratio} (goal ≤ 2); ` +
        `p99 after ${result.issuance.after.p99Ms} ms; cached GET ${result.cachedGetMs} ms; ${failures.length} failed`,
    );
    console.log(
      `crl (${driver}): event-loop delay of the service (max / p99): ${lagBaseline.maxMs} / ${lagBaseline.p99Ms} ms during the baseline, ` +
        `${lagDuring.maxMs} / ${lagDuring.p99Ms} ms during the rebuild`,
    );
    for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure}`);
    const dir = path.join(__dirname, '..', '..', 'bench', 'results');
    fs.mkdirSync(dir, { recursive: true });
    const out = path.join(dir, `crl-${driver}-${result.at.replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`crl: results in ${path.relative(process.cwd(), out)}`);
  } finally {
    svc.stop();
    await dropDatabase();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const round = (n: number): number => Math.round(n * 100) / 100;
