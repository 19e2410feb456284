import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { CertificateStatus, effectiveStatus } from '../src/certificates/certificate';
import { TypeOrmCertificateRepository } from '../src/certificates/typeorm-certificate.repository';
import { DatabaseConfig } from '../src/config/config';
import { dataSourceOptions } from '../src/database/data-source-options';
import { TypeOrmTransactions } from '../src/database/typeorm-transactions';
import { buildCsr } from '../tools/csr-builder';
import { bearer, option, percentile, startService } from './support';

const DAY_MS = 86_400_000;
const STATUSES = ['active', 'expired', 'revoked', 'superseded'] as const;
/** Rows a page (the API's default limit). */
const PAGE = 100;

/** What the seeded rows look like: the share of each status and of each lifetime (days), issued over the last year. */
const SEED = { superseded: 0.1, revoked: 0.03, lifetimes: [{ days: 365, share: 0.85 }, { days: 90, share: 0.1 }, { days: 730, share: 0.05 }], thingsPerRow: 0.8 };

interface Page {
  items: { id: string; thingName: string | null; serial: string; status: string; notAfter: string; issuedAt: string }[];
  nextCursor: string | null;
}

/** One timed request kind: its latencies and what went wrong. */
class Kind {
  readonly latenciesMs: number[] = [];
  readonly failures: string[] = [];
  items = 0;
  constructor(readonly name: string) {}
  result() {
    const sorted = [...this.latenciesMs].sort((a, b) => a - b);
    return { requests: sorted.length, p50Ms: round(percentile(sorted, 50)), p95Ms: round(percentile(sorted, 95)), p99Ms: round(percentile(sorted, 99)), maxMs: round(sorted[sorted.length - 1]), itemsPerRequest: round(this.items / Math.max(1, sorted.length)), failures: this.failures.length };
  }
}

/**
 * GET /v1/certificates over N stored certificates (default 1,000,000), on PostgreSQL (default when FLEET_PKI_TEST_PG_URL
 * is set) or SQLite: the real service in its own process on a fresh database, CAs made through the API, the rows
 * seeded straight into the table with one INSERT … SELECT (indexes dropped and rebuilt around it: the schema is the
 * migrations'), then ANALYZE. Timed over HTTP with keep-alive by C closed-loop clients (default 4), interleaved: a
 * thing name, a serial, a status, a status + expiringBefore (first page, then up to 4 following pages through
 * nextCursor), each with random keys of stored rows; GET /healthz in the same run is the reference. Every answer is
 * checked (filter, order, no repeats across pages). Then the same mix straight through the repository in this process:
 * the database's share, without HTTP, authentication and JSON. JSON results under bench/results/.
 */
export async function search(): Promise<void> {
  const rows = Number(option('rows', '1000000'));
  const driver = option('db', process.env.FLEET_PKI_TEST_PG_URL ? 'postgres' : 'sqlite');
  const rounds = Number(option('rounds', '1500'));
  const concurrency = Number(option('concurrency', '4'));
  const warmup = Number(option('warmup', '200'));
  // --keep-db yes: leave the seeded database (PostgreSQL) in place for EXPLAIN after the run; its name is printed.
  const keepDb = option('keep-db', 'no') === 'yes';
  if (!Number.isSafeInteger(rows) || rows < 1000 || rows > 20_000_000) throw new Error('--rows must be 1000..20000000');
  if (driver !== 'postgres' && driver !== 'sqlite') throw new Error('--db must be postgres or sqlite');

  const database = driver === 'postgres' ? await postgresDatabase() : sqliteDatabase();
  const service = await startService({ DATABASE_URL: database.config.driver === 'postgres' ? database.config.url : `sqlite:${database.config.file}`, FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex') });
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const get = (route: string) => getJson(agent, `${service.baseUrl}${route}`, service.adminKey);
  let dataSource: DataSource | undefined;
  try {
    // Setup, not timed: a root and three issuing CAs through the API, and one real certificate whose DER every row carries.
    const admin = async (route: string, body: unknown) => {
      const res = await fetch(`${service.baseUrl}${route}`, { method: 'POST', headers: { ...bearer(service.adminKey), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      const json = (await res.json()) as Record<string, string>;
      if (res.status !== 201) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const root = await admin('/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
    const authorities: string[] = [];
    for (const n of [1, 2, 3]) authorities.push((await admin('/v1/authorities', { name: `Bench Issuing ${n}`, type: 'intermediate', parentId: root.id, subject: { commonName: `Bench Issuing ${n}` } })).id);
    const sample = await admin('/v1/certificates', { authorityId: authorities[0], csr: buildCsr({ commonName: 'search-bench-sample' }), profile: 'device', thingName: 'search-bench-sample' });
    const der = Buffer.from(sample.certificatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64');

    const now = new Date();
    console.log(`seeding ${rows} certificates (${driver})…`);
    const seeded = performance.now();
    await database.seed(rows, authorities, der, now.toISOString());
    const seedSeconds = (performance.now() - seeded) / 1000;
    console.log(`seeded in ${seedSeconds.toFixed(0)} s (indexes rebuilt, ANALYZE done)`);
    const keys = await database.sampleKeys(2000);

    const random = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)];
    /** One page of a filter through HTTP (cursor: the API's nextCursor) or straight through the repository (the service's keyset). */
    type Pager = (query: Record<string, string>, cursor: unknown) => Promise<{ status: number; items: Page['items']; next: unknown; error?: string }>;
    const overHttp: Pager = async (query, cursor) => {
      const route = `/v1/certificates?${new URLSearchParams(cursor ? { ...query, cursor: cursor as string } : query)}`;
      const res = await get(route);
      if (res.status !== 200) return { status: res.status, items: [], next: null, error: `${route}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}` };
      const body = res.body as Page;
      return { status: 200, items: body.items, next: body.nextCursor };
    };
    dataSource = new DataSource(dataSourceOptions(database.config));
    await dataSource.initialize();
    const repository = new TypeOrmCertificateRepository(new TypeOrmTransactions(dataSource));
    const direct: Pager = async (query, cursor) => {
      // What CertificatesService.search hands the repository: one row more than the page, the last row as the keyset.
      const expiringBefore = query.expiringBefore === undefined ? undefined : new Date(query.expiringBefore).toISOString();
      const rows = await repository.search({ ...query, expiringBefore, status: query.status as CertificateStatus | undefined, before: cursor as { issuedAt: string; id: string } | undefined, now: new Date().toISOString(), limit: PAGE + 1 });
      const items = rows.slice(0, PAGE).map((row) => ({ ...row, status: effectiveStatus(row, new Date()) }));
      const last = items[items.length - 1];
      return { status: 200, items, next: rows.length > PAGE ? { issuedAt: last.issuedAt, id: last.id } : null };
    };

    const measure = async (label: string, pager: Pager, withHealthz: boolean) => {
      const kinds = {
        thing: new Kind('thingName'),
        serial: new Kind('serial'),
        status: new Kind('status (first page)'),
        statusNext: new Kind('status (next pages)'),
        expiry: new Kind('status + expiringBefore (first page)'),
        expiryNext: new Kind('status + expiringBefore (next pages)'),
        ...(withHealthz ? { healthz: new Kind('GET /healthz (reference)') } : {}),
      };
      /** A filter's pages: the first, then up to `more` through the cursor; checks each item and the order across pages. */
      const pages = async (first: Kind | null, next: Kind | null, query: Record<string, string>, more: number, matches: (item: Page['items'][number]) => boolean) => {
        const seen = new Set<string>();
        let last: { issuedAt: string; id: string } | null = null;
        let cursor: unknown = null;
        for (let page = 0; page <= more; page++) {
          const kind = page === 0 ? first : next;
          const t0 = performance.now();
          const res = await pager(query, cursor);
          if (kind) kind.latenciesMs.push(performance.now() - t0);
          if (res.error) return kind?.failures.push(res.error);
          if (kind) kind.items += res.items.length;
          for (const item of res.items) {
            const inOrder: boolean = !last || item.issuedAt < last.issuedAt || (item.issuedAt === last.issuedAt && item.id < last.id);
            if (!matches(item) || seen.has(item.id) || !inOrder) kind?.failures.push(`${JSON.stringify(query)}: ${JSON.stringify(item).slice(0, 300)} does not belong where it is`);
            seen.add(item.id);
            last = item;
          }
          cursor = res.next;
          if (!cursor) return;
        }
      };
      const oneRound = async (timedRun: boolean) => {
        const t = (kind: Kind) => (timedRun ? kind : null);
        const key = random(keys);
        await pages(t(kinds.thing), null, { thingName: key.thingName }, 0, (item) => item.thingName === key.thingName);
        await pages(t(kinds.serial), null, { serial: key.serial }, 0, (item) => item.serial === key.serial);
        const status = random(STATUSES);
        await pages(t(kinds.status), t(kinds.statusNext), { status }, 2, (item) => item.status === status);
        // A status, and a random expiringBefore in the coming year: "what expires before …", first page and 4 more.
        const expiring = random(STATUSES);
        const before = new Date(Date.now() + (1 + Math.random() * 364) * DAY_MS).toISOString();
        const current = new Date().toISOString();
        await pages(t(kinds.expiry), t(kinds.expiryNext), { status: expiring, expiringBefore: before }, 4, (item) => item.status === expiring && item.notAfter < before && (expiring !== 'active' || item.notAfter > current));
        if (kinds.healthz) {
          for (let i = 0; i < 3; i++) {
            const t0 = performance.now();
            const res = await get('/healthz');
            if (timedRun) kinds.healthz.latenciesMs.push(performance.now() - t0);
            if (timedRun && res.status !== 200) kinds.healthz.failures.push(`healthz: ${res.status}`);
          }
        }
      };
      const loop = async (count: number, timedRun: boolean) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < count) {
              next++;
              await oneRound(timedRun);
            }
          }),
        );
      };
      console.log(`${label}: warm-up ${warmup} rounds, then ${rounds} timed rounds at concurrency ${concurrency}`);
      await loop(warmup, false);
      const started = performance.now();
      await loop(rounds, true);
      const seconds = (performance.now() - started) / 1000;
      const results = Object.fromEntries(Object.values(kinds).map((kind) => [kind.name, kind.result()]));
      console.log(`\n${label}: search over ${rows} certificates (${driver}), concurrency ${concurrency}, ${seconds.toFixed(1)} s:`);
      for (const [name, r] of Object.entries(results)) {
        console.log(`  ${name.padEnd(40)} n=${String(r.requests).padStart(5)}  p50 ${r.p50Ms.toFixed(1).padStart(6)} ms  p95 ${r.p95Ms.toFixed(1).padStart(6)} ms  p99 ${r.p99Ms.toFixed(1).padStart(6)} ms  max ${r.maxMs.toFixed(1).padStart(6)} ms  items/page ${r.itemsPerRequest}  failures ${r.failures}`);
      }
      if (kinds.healthz) {
        const reference = results[kinds.healthz.name].p99Ms;
        console.log(`  p99 / healthz p99: ${Object.values(kinds).filter((k) => k !== kinds.healthz).map((k) => `${k.name} ${(results[k.name].p99Ms / reference).toFixed(1)}x`).join(', ')}`);
      }
      for (const failure of Object.values(kinds).flatMap((k) => k.failures).slice(0, 5)) console.log(`  failure: ${failure.slice(0, 300)}`);
      return { seconds: round(seconds), results };
    };

    // Over HTTP (what a client sees), then the same mix straight through the repository in this process (the
    // database's share, without HTTP, authentication and JSON).
    const httpResults = await measure('HTTP', overHttp, true);
    const throughRepository = await measure('repository', direct, false);

    const dir = path.join(__dirname, '../../bench/results');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `search-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify({ bench: 'search', at: new Date().toISOString(), driver, rows, rounds, warmup, concurrency, pageSize: PAGE, seedSeconds: round(seedSeconds), cpus: os.cpus().length, loadAverage: os.loadavg(), seed: SEED, http: httpResults, repository: throughRepository }, null, 2));
    console.log(`results: ${path.relative(process.cwd(), file)}`);
  } finally {
    await dataSource?.destroy();
    agent.destroy();
    service.stop();
    if (keepDb) console.log(`database kept: ${database.config.driver === 'postgres' ? database.config.url : database.config.file}`);
    else await database.drop();
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function getJson(agent: http.Agent, url: string, key: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: bearer(key) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('error', reject);
  });
}

interface BenchDatabase {
  config: DatabaseConfig;
  /** Inserts `rows` certificates of `authorities` (see SEED), every one carrying `der`, issued over the year before `now`. */
  seed(rows: number, authorities: string[], der: string, now: string): Promise<void>;
  /** Thing names and serials of stored rows, at random. */
  sampleKeys(count: number): Promise<{ thingName: string; serial: string }[]>;
  drop(): Promise<void>;
}

/** ISO time with milliseconds, as the service stores it. */
const PG_ISO = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/** A fresh PostgreSQL database named after this process on the FLEET_PKI_TEST_PG_URL server, dropped at the end. */
async function postgresDatabase(): Promise<BenchDatabase> {
  const adminUrl = process.env.FLEET_PKI_TEST_PG_URL;
  if (!adminUrl) throw new Error('--db postgres needs FLEET_PKI_TEST_PG_URL (an admin URL, e.g. postgres://postgres@127.0.0.1:5432/postgres)');
  const name = `fleet_pki_bench_search_${process.pid}`;
  const withClient = async <T>(url: string, work: (client: Client) => Promise<T>) => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  await withClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    config: { driver: 'postgres', url: url.toString(), poolSize: 10 },
    seed: (rows, authorities, der, now) =>
      withClient(url.toString(), async (c) => {
        await c.query("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'");
        // The indexes the migrations made, less those behind constraints: dropped for the load, then made again as they were.
        const { rows: indexes } = await c.query<{ name: string; definition: string }>(
          "SELECT indexname AS name, indexdef AS definition FROM pg_indexes WHERE tablename = 'certificates' AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        );
        for (const index of indexes) await c.query(`DROP INDEX "${index.name}"`);
        const [superseded, revoked] = [SEED.superseded, SEED.superseded + SEED.revoked];
        const [l1, l2, l3] = SEED.lifetimes;
        await c.query(
          `INSERT INTO certificates (id, authority_id, serial, fingerprint, profile, subject, thing_name, status, not_before, not_after, issued_at, public_key_sha256, key_description, certificate_der, revoked_at, revocation_reason, superseded_at)
           SELECT gen_random_uuid()::text, ($2::text[])[1 + i % cardinality($2::text[])], substr(encode(sha256(('s' || i)::bytea), 'hex'), 1, 40),
                  encode(sha256(('f' || i)::bytea), 'hex'), 'device', 'CN=bench-device-' || (i % $3), 'bench-device-' || (i % $3), st,
                  to_char((t - interval '300 seconds') AT TIME ZONE 'UTC', ${PG_ISO}), to_char((t + v) AT TIME ZONE 'UTC', ${PG_ISO}),
                  to_char(t AT TIME ZONE 'UTC', ${PG_ISO}), encode(sha256(('k' || i)::bytea), 'hex'), 'EC P-256', $4,
                  CASE WHEN st = 'revoked' THEN to_char((t + (now_ - t) * random()) AT TIME ZONE 'UTC', ${PG_ISO}) END,
                  CASE WHEN st = 'revoked' THEN 'keyCompromise' END,
                  CASE WHEN st = 'superseded' THEN to_char((t + (now_ - t) * random()) AT TIME ZONE 'UTC', ${PG_ISO}) END
           FROM (SELECT i, $5::timestamptz AS now_, $5::timestamptz - random() * interval '365 days' AS t,
                        CASE WHEN r < ${l1.share} THEN interval '${l1.days} days' WHEN r < ${l1.share + l2.share} THEN interval '${l2.days} days' ELSE interval '${l3.days} days' END AS v,
                        CASE WHEN s < ${superseded} THEN 'superseded' WHEN s < ${revoked} THEN 'revoked' ELSE 'active' END AS st
                 FROM (SELECT i, random() AS r, random() AS s FROM generate_series(1, $1::int) AS i) g) x`,
          [rows, authorities, Math.max(1, Math.floor(rows * SEED.thingsPerRow)), der, now],
        );
        for (const index of indexes) await c.query(index.definition);
        // What autovacuum would have done to a table this size by the time anyone searches it (visibility map, statistics).
        await c.query('VACUUM ANALYZE certificates');
      }),
    sampleKeys: (count) =>
      withClient(url.toString(), async (c) => (await c.query<{ thingName: string; serial: string }>('SELECT thing_name AS "thingName", serial FROM certificates ORDER BY random() LIMIT $1', [count])).rows),
    drop: () => withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** A fresh SQLite file in a temporary directory, removed at the end. */
function sqliteDatabase(): BenchDatabase {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-search-'));
  const file = path.join(dir, 'search.sqlite');
  const open = () => {
    // Node's own SQLite: the seeding needs nothing of better-sqlite3 (the service's driver) but SQL.
    const db = new DatabaseSync(file);
    db.exec('PRAGMA busy_timeout = 30000');
    return db;
  };
  // SQLite's random() is a 64-bit integer: this is one in [0, 1).
  const unit = '((random() % 1000000 + 1000000) % 1000000) / 1000000.0';
  const hex = (bytes: number) => `lower(hex(randomblob(${bytes})))`;
  const iso = (julian: string) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${julian})`;
  return {
    config: { driver: 'sqlite', file },
    seed: async (rows, authorities, der, now) => {
      const db = open();
      try {
        const indexes = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' AND sql IS NOT NULL").all() as unknown as { name: string; sql: string }[];
        for (const index of indexes) db.exec(`DROP INDEX "${index.name}"`);
        const [superseded, revoked] = [SEED.superseded, SEED.superseded + SEED.revoked];
        const [l1, l2, l3] = SEED.lifetimes;
        const authorityList = authorities.map((a) => `'${a.replace(/'/g, '')}'`);
        db.prepare(
          `INSERT INTO certificates (id, authority_id, serial, fingerprint, profile, subject, thing_name, status, not_before, not_after, issued_at, public_key_sha256, key_description, certificate_der, revoked_at, revocation_reason, superseded_at, validity_clamped, iot_status)
           WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < @rows),
           x AS MATERIALIZED (SELECT i, julianday(@now) - 365 * ${unit} AS t, ${unit} AS r, ${unit} AS s, ${unit} AS u FROM g)
           SELECT ${hex(4)} || '-' || ${hex(2)} || '-4' || substr(${hex(2)}, 2) || '-a' || substr(${hex(2)}, 2) || '-' || ${hex(6)},
                  CASE i % ${authorities.length} ${authorityList.map((a, n) => `WHEN ${n} THEN ${a}`).join(' ')} END,
                  ${hex(20)}, ${hex(32)}, 'device', 'CN=bench-device-' || (i % @things), 'bench-device-' || (i % @things),
                  CASE WHEN s < ${superseded} THEN 'superseded' WHEN s < ${revoked} THEN 'revoked' ELSE 'active' END,
                  ${iso('t - 300.0 / 86400')},
                  ${iso(`t + CASE WHEN r < ${l1.share} THEN ${l1.days} WHEN r < ${l1.share + l2.share} THEN ${l2.days} ELSE ${l3.days} END`)},
                  ${iso('t')}, ${hex(32)}, 'EC P-256', @der,
                  CASE WHEN s >= ${superseded} AND s < ${revoked} THEN ${iso('t + (julianday(@now) - t) * u')} END,
                  CASE WHEN s >= ${superseded} AND s < ${revoked} THEN 'keyCompromise' END,
                  CASE WHEN s < ${superseded} THEN ${iso('t + (julianday(@now) - t) * u')} END, 0, 'none'
           FROM x`,
        ).run({ rows: BigInt(rows), now, der, things: BigInt(Math.max(1, Math.floor(rows * SEED.thingsPerRow))) });
        for (const index of indexes) db.exec(index.sql);
        db.exec('ANALYZE');
      } finally {
        db.close();
      }
    },
    sampleKeys: async (count) => {
      const db = open();
      try {
        return db.prepare('SELECT thing_name AS thingName, serial FROM certificates ORDER BY random() LIMIT ?').all(count) as unknown as { thingName: string; serial: string }[];
      } finally {
        db.close();
      }
    },
    drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
