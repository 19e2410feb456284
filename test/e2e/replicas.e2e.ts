import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it, TestContext } from 'node:test';
import { CreatePolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { Client } from 'pg';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { buildCsr } from '../../tools/csr-builder';
import { IotRequestRecord, IotStandIn } from '../../tools/standins';
import { eventually } from '../support/eventually';
import { freePort } from '../support/free-port';
import { OpenSslWorkspace } from '../support/openssl';
import { stationCredentials, StationCredentials, stationTokenFor } from '../support/station';
import { captureChildOutput } from '../support/log-capture';

/**
 * Replicas (docs/architecture.md, "Replicas"): three real service processes (`node dist/src/main.js`, WORKERS=1 each,
 * ports of their own, one PostgreSQL database, the AWS IoT stand-in behind all three) take, at the same time and
 * spread over the three: issuance, revocation (each sent to two replicas at once: one 200, one 409; each republishes
 * the CRL), claim exchanges on one claim whose quota is smaller than the demand, and GET of the CRL on every replica
 * in a loop. Then everything that must happen once is checked, as decided by the database and not by any one process:
 * - no serial twice per authority (API and database);
 * - CRL numbers: every CRL fetched from any replica, read by openssl, has one content per number (identical bytes),
 *   a higher number never lists fewer revocations, a client reading replicas in turn never sees the number go back,
 *   and the database's CRL records have unique, increasing numbers and coverage; at the end every replica serves the
 *   same CRL, listing exactly the revoked certificates;
 * - the quota: exactly maxDevices exchanges acknowledged, the others refused with CLAIM_QUOTA_EXHAUSTED, used = maxDevices;
 * - each outbox job ran once: the IoT stand-in's request log shows one RegisterCertificate (and one activation, one
 *   thing attachment) per certificate and one revocation per revoked certificate, and every replica ran jobs;
 * - the audit chain verifies on every replica, with one issuance event per certificate.
 * Bounded in time: the workload and the checks in 90 s from the first request (about 25 s on a quiet 2-core VM); the
 * start-up of the three processes, which only a loaded machine makes slow, at most 60 s each before that.
 */

const REPLICAS = 3;
/** Issuances by the operator API, every REVOKE_EVERY-th of them revoked once AWS IoT shows it ACTIVE. */
const ISSUANCES = 36;
const ISSUERS = 6;
const REVOKE_EVERY = 3;
const REVOKERS = 3;
/** One claim, more stations asking than it allows. */
const MAX_DEVICES = 8;
const EXCHANGES = 24;
/** The name the replicas share behind their load balancer: the audience of station JWTs, the base of CRL and OCSP URLs. */
const PUBLIC_BASE_URL = 'http://pki.replicas.test';
const MAIN = path.resolve(__dirname, '../../src/main.js');

const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set`;
/** From the first request to the last check. */
const WORK_BUDGET_MS = 90_000;

/** One service process: its own port and data directory, the shared database. */
class Replica {
  url = '';
  log = '';
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-replica-'));

  constructor(readonly index: number) {}

  async start(env: Record<string, string>): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: this.dataDir, WORKERS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    captureChildOutput(child, env);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const onOutput = (chunk: Buffer) => (this.log = (this.log + chunk.toString()).slice(-20_000));
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    await eventually(`replica ${this.index} listens`, () => {
      if (child.exitCode !== null) throw new Error(`replica ${this.index} exited with ${child.exitCode}:\n${this.log}`);
      return this.log.includes('listening');
    }, 60_000);
  }

  /** SIGTERM, and SIGKILL if it has not ended within 10 s; removes its data directory. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

interface Answer {
  status: number;
  json: Record<string, unknown>;
  bytes: Buffer;
}

/** A certificate the service acknowledged, and on which replica. */
interface Acknowledged {
  id: string;
  serial: string;
  fingerprint: string;
  replica: number;
}

/** One CRL as a client got it: from which replica, in which order (per fetcher), and its bytes. */
interface FetchedCrl {
  replica: number;
  der: Buffer;
}

/** What openssl reads in a CRL. */
interface CrlReading {
  number: number;
  revokedSerials: Set<string>;
}

/** Hex serials compared as numbers: lowercase, no leading zeros (openssl prints them uppercase, padded to whole bytes). */
const serialKey = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, '');
const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('replicas: three service processes on one PostgreSQL database', { skip: pgSkip }, () => {
  const replicas = Array.from({ length: REPLICAS }, (_, i) => new Replica(i));
  const adminKey = generateApiKey().key;
  const ssl = new OpenSslWorkspace();
  let db: TemporaryDatabase;
  let sql: Client;
  let iot: IotStandIn;
  let deviceCa: { id: string; certificatePem: string; chainPem: string };
  let claimId: string;
  let station: StationCredentials;
  /** When the replicas listened and the first request was sent. */
  let started = 0;

  // What the load leaves for the checks.
  const acknowledged: Acknowledged[] = [];
  const revoked: Acknowledged[] = [];
  const exchanges: Answer[] = [];
  const exchanged: Acknowledged[] = [];
  const fetched: FetchedCrl[] = [];
  /** The CRL numbers one client saw reading the replicas in turn, one request after the other. */
  const inTurn: number[] = [];
  const unexpected: string[] = [];
  let loaded = false;

  async function call(replica: number, method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${replicas[replica].url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const json = (res.headers.get('content-type') ?? '').includes('json') && bytes.length ? (JSON.parse(bytes.toString()) as Record<string, unknown>) : {};
    return { status: res.status, json, bytes };
  }

  async function ok(replica: number, method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await call(replica, method, route, body);
    assert.ok(res.status >= 200 && res.status < 300, `replica ${replica}: ${method} ${route}: ${res.status} ${res.bytes.toString().slice(0, 500)}`);
    return res.json;
  }

  /** Every item of a cursor-paged list. */
  async function all(replica: number, route: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page = await ok(replica, 'GET', `${route}${route.includes('?') ? '&' : '?'}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...(page.items as Record<string, unknown>[]));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    return items;
  }

  async function crl(replica: number): Promise<Buffer> {
    const res = await call(replica, 'GET', `/v1/authorities/${deviceCa.id}/crl`);
    assert.equal(res.status, 200, `replica ${replica}: GET crl: ${res.status} ${res.bytes.toString().slice(0, 300)}`);
    return res.bytes;
  }

  /** openssl's reading of a CRL, after it verified the CRL's signature with the issuing CA's key. */
  const readings = new Map<string, CrlReading>();
  function readCrl(der: Buffer): CrlReading {
    const digest = sha256(der);
    let reading = readings.get(digest);
    if (!reading) {
      const file = ssl.file(`${digest}.crl`, der);
      const verified = ssl.run(['crl', '-inform', 'DER', '-in', file, '-CAfile', ssl.file('device-ca.pem', deviceCa.certificatePem), '-noout']);
      assert.match(verified.output, /verify OK/, `a CRL whose signature does not verify: ${verified.output}`);
      const text = ssl.run(['crl', '-inform', 'DER', '-in', file, '-noout', '-text']).output;
      const number = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text);
      assert.ok(number, `no CRL number in:\n${text.slice(0, 1000)}`);
      reading = { number: Number(number[1]), revokedSerials: new Set([...text.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => serialKey(m[1]))) };
      readings.set(digest, reading);
    }
    return reading;
  }

  let startUpSeconds = 0;
  before(async () => {
    const startUp = Date.now();
    db = await temporaryDatabase('postgres');
    if (db.config.driver !== 'postgres') throw new Error('expected a PostgreSQL database');
    sql = new Client({ connectionString: db.config.url });
    await sql.connect();
    iot = await new IotStandIn({ latencyMs: 5 }).start();
    await new IoTClient({ region: iot.region, endpoint: iot.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }).send(
      new CreatePolicyCommand({ policyName: 'fleet-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
    );
    const env = {
      DATABASE_URL: db.config.url,
      FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex'),
      FLEET_PKI_BOOTSTRAP_ADMIN_KEY: adminKey,
      PUBLIC_BASE_URL,
      AWS_REGION: iot.region,
      AWS_ENDPOINT_URL_IOT: iot.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_EC2_METADATA_DISABLED: 'true',
      OUTBOX_POLL_MS: '50',
      OUTBOX_BACKOFF_BASE_MS: '50',
      OUTBOX_BACKOFF_MAX_MS: '500',
      LOG_LEVEL: 'warn',
    };
    // The first alone (it runs the migrations and makes the admin key), then the others together.
    await replicas[0].start(env);
    await Promise.all(replicas.slice(1).map((replica) => replica.start(env)));
    started = Date.now();
    startUpSeconds = (started - startUp) / 1000;

    const root = await ok(0, 'POST', '/v1/authorities', { name: 'Replica Root', type: 'root', subject: { commonName: 'Replica Root' } });
    const claimCa = await ok(1, 'POST', '/v1/authorities', { name: 'Replica Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Replica Claims CA' } });
    deviceCa = (await ok(2, 'POST', '/v1/authorities', { name: 'Replica Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Replica Devices CA' } })) as typeof deviceCa;
    await ok(0, 'POST', `/v1/authorities/${deviceCa.id}/iot-registration`, { certificateMode: 'SNI_ONLY', deviceRegistration: 'api', policyName: 'fleet-device' });
    const claim = await ok(1, 'POST', '/v1/claims', {
      name: 'Replica claim',
      factory: 'Replica factory',
      claimAuthorityId: claimCa.id,
      deviceAuthorityId: deviceCa.id,
      maxDevices: MAX_DEVICES,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(),
      thingNameTemplate: 'replica-{serial}',
      claimCertificate: { generateKey: true },
    });
    claimId = claim.id as string;
    station = stationCredentials(claim as Parameters<typeof stationCredentials>[0]);
    // Three start-ups of at most 60 s each (Replica.start), then a few requests.
  }, { timeout: 4 * 60_000 });

  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await sql?.end();
    await iot?.stop();
    await db?.drop();
    ssl.cleanup();
  });

  it('takes issuance, revocation, claim exchanges and CRL requests on every replica at once', { timeout: WORK_BUDGET_MS }, async (t: TestContext) => {
    const loadStarted = Date.now();

    const issuance = async (client: number) => {
      for (let i = client; i < ISSUANCES; i += ISSUERS) {
        const replica = i % REPLICAS;
        const thingName = `replica-device-${i}`;
        const res = await call(replica, 'POST', '/v1/certificates', { authorityId: deviceCa.id, csr: buildCsr({ commonName: thingName }), profile: 'device', thingName });
        if (res.status !== 201) {
          unexpected.push(`issuance on replica ${replica}: ${res.status} ${res.bytes.toString().slice(0, 300)}`);
          continue;
        }
        acknowledged.push({ id: res.json.id as string, serial: res.json.serial as string, fingerprint: res.json.fingerprint as string, replica });
        if (i % REVOKE_EVERY === 0) toRevoke.push(acknowledged[acknowledged.length - 1]);
      }
    };

    // Revoked once AWS IoT shows the certificate ACTIVE (its registration job finished), each on another replica than
    // the one that issued it: so each certificate's AWS calls are exactly one registration and one revocation.
    const toRevoke: Acknowledged[] = [];
    let issuing = true;
    const revocation = async (client: number) => {
      for (let turn = client; issuing || toRevoke.length > 0; turn++) {
        const certificate = toRevoke.shift();
        if (!certificate) {
          await sleep(20);
          continue;
        }
        const reader = (certificate.replica + 1) % REPLICAS;
        await eventually(`certificate ${certificate.id} is ACTIVE in AWS IoT`, async () => {
          const res = await call(reader, 'GET', `/v1/certificates/${certificate.id}`);
          return (res.json.iot as { status?: string } | undefined)?.status === 'active';
        }, 30_000, 50);
        // The same revocation on two replicas at once (an operator's retry through the load balancer): one wins.
        const revokers = [(certificate.replica + 1 + (turn % (REPLICAS - 1))) % REPLICAS, (certificate.replica + 2 + (turn % (REPLICAS - 1))) % REPLICAS];
        const answers = await Promise.all(revokers.map((r) => call(r, 'POST', `/v1/certificates/${certificate.id}/revoke`, { reason: 'keyCompromise' })));
        const outcome = answers.map((res) => `${res.status} ${res.json.code ?? ''}`.trim()).sort();
        if (JSON.stringify(outcome) === JSON.stringify(['200', '409 CERTIFICATE_ALREADY_REVOKED'])) revoked.push(certificate);
        else unexpected.push(`revocation of ${certificate.id} on replicas ${revokers.join(' and ')}: ${outcome.join(', ')} (expected one 200 and one 409)`);
      }
    };

    // All at once, a third on each replica: more stations than the claim allows.
    const exchange = async () => {
      await eventually('the first certificates are issued', () => acknowledged.length >= ISSUERS, 30_000);
      const answers = await Promise.all(
        Array.from({ length: EXCHANGES }, async (_, k) => {
          const replica = k % REPLICAS;
          const deviceSerial = `RS${String(k).padStart(3, '0')}`;
          const token = stationTokenFor(`${PUBLIC_BASE_URL}/v1/provisioning/exchange`, station);
          const res = await call(replica, 'POST', '/v1/provisioning/exchange', { deviceSerial, csr: buildCsr({ commonName: deviceSerial }) }, { Authorization: `Bearer ${token}` });
          // The exchange names the fingerprint by its AWS IoT name, certificateId.
          if (res.status === 201) exchanged.push({ id: res.json.id as string, serial: res.json.serial as string, fingerprint: res.json.certificateId as string, replica });
          return res;
        }),
      );
      exchanges.push(...answers);
    };

    // Every replica's CRL in a loop, and one client reading the replicas in turn.
    const crlLoop = async (replica: number) => {
      while (!loaded) {
        fetched.push({ replica, der: await crl(replica) });
        await sleep(30);
      }
    };
    // openssl reads them after the load (it would take CPU the replicas need).
    const inTurnDers: Buffer[] = [];
    const crlInTurn = async () => {
      for (let turn = 0; !loaded; turn++) {
        const replica = turn % REPLICAS;
        const der = await crl(replica);
        fetched.push({ replica, der });
        inTurnDers.push(der);
      }
    };

    const crlReaders = [...replicas.map((_, r) => crlLoop(r)), crlInTurn()];
    const workload = Promise.all([
      Promise.all(Array.from({ length: ISSUERS }, (_, c) => issuance(c))).finally(() => (issuing = false)),
      Promise.all(Array.from({ length: REVOKERS }, (_, c) => revocation(c))),
      exchange(),
    ]).finally(() => (loaded = true));
    // Every branch to its end (a failed one stops the CRL readers through `loaded`), then the first failure, if any,
    // with what the replicas said.
    const failed = (await Promise.allSettled([workload, ...crlReaders])).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    const troubled = failed !== undefined || unexpected.length > 0 || exchanges.some((res) => res.status >= 500);
    if (troubled) for (const replica of replicas) t.diagnostic(`replica ${replica.index} output (last lines):\n${replica.log.split('\n').slice(-40).join('\n')}`);
    if (failed) throw failed.reason;
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    inTurn.push(...inTurnDers.map((der) => readCrl(der).number));

    assert.deepEqual(unexpected, [], 'every issuance and revocation succeeds');
    assert.equal(acknowledged.length, ISSUANCES);
    assert.equal(revoked.length, Math.ceil(ISSUANCES / REVOKE_EVERY));
    assert.equal(exchanges.length, EXCHANGES);
    t.diagnostic(
      `load ${loadSeconds.toFixed(1)} s: ${acknowledged.length} issued, ${revoked.length} revoked, ${exchanged.length}/${EXCHANGES} exchanges acknowledged, ` +
        `${fetched.length} CRLs fetched (${new Set(fetched.map((f) => sha256(f.der))).size} distinct); start-up ${startUpSeconds.toFixed(1)} s, set-up requests ${((loadStarted - started) / 1000).toFixed(1)} s`,
    );
  });

  it('lets every outbox job finish', async () => {
    await eventually('every outbox job is done', async () => {
      const { rows } = await sql.query<{ n: string }>("SELECT COUNT(*) AS n FROM outbox_jobs WHERE status <> 'done'");
      return Number(rows[0].n) === 0;
    }, 30_000, 100);
  });

  it('gives no serial twice per authority', async () => {
    const certificates = await all(0, `/v1/certificates?authorityId=${deviceCa.id}`);
    assert.equal(certificates.length, ISSUANCES + MAX_DEVICES);
    const serials = certificates.map((c) => serialKey(c.serial as string));
    assert.equal(new Set(serials).size, serials.length, 'duplicate serials under the device CA');
    const listed = new Set(certificates.map((c) => c.id));
    assert.deepEqual([...acknowledged, ...exchanged].filter((a) => !listed.has(a.id)), [], 'every acknowledged certificate is stored');
    const { rows } = await sql.query('SELECT authority_id, serial, COUNT(*) AS n FROM certificates GROUP BY authority_id, serial HAVING COUNT(*) > 1');
    assert.deepEqual(rows, [], 'the database holds no serial twice for one authority');
  });

  it('publishes CRL numbers strictly increasing, never reused, never listing fewer revocations', async (t: TestContext) => {
    // At the end every replica serves the same CRL, which lists exactly the revoked certificates.
    const finals = await Promise.all(replicas.map((_, r) => crl(r)));
    assert.equal(new Set(finals.map(sha256)).size, 1, 'every replica serves the same latest CRL');
    fetched.push(...finals.map((der, replica) => ({ replica, der })));
    const final = readCrl(finals[0]);
    assert.deepEqual([...final.revokedSerials].sort(), revoked.map((r) => serialKey(r.serial)).sort(), 'the latest CRL lists exactly the revoked certificates');

    // Same number ⇒ same bytes, across replicas.
    const byNumber = new Map<number, Set<string>>();
    for (const { der } of fetched) {
      const { number } = readCrl(der);
      byNumber.set(number, (byNumber.get(number) ?? new Set()).add(sha256(der)));
    }
    const reused = [...byNumber].filter(([, digests]) => digests.size > 1).map(([number, digests]) => `${number}: ${digests.size} different CRLs`);
    assert.deepEqual(reused, [], 'one CRL number, one CRL');
    // A higher number never lists fewer revocations (nothing is un-revoked by a later CRL).
    const numbers = [...byNumber.keys()].sort((a, b) => a - b);
    const sets = numbers.map((n) => readCrl(fetched.find((f) => readCrl(f.der).number === n)!.der).revokedSerials);
    for (let i = 1; i < sets.length; i++) {
      const lost = [...sets[i - 1]].filter((serial) => !sets[i].has(serial));
      assert.deepEqual(lost, [], `CRL ${numbers[i]} drops serials CRL ${numbers[i - 1]} listed`);
    }
    // One client reading the replicas in turn never sees the number go back.
    for (let i = 1; i < inTurn.length; i++) assert.ok(inTurn[i] >= inTurn[i - 1], `CRL number went back from ${inTurn[i - 1]} to ${inTurn[i]} between two requests`);
    assert.ok(numbers.length >= 3, `several CRLs were published during the load (saw ${numbers.join(', ')})`);

    // The database: unique increasing numbers, coverage that never goes back, the bytes clients got.
    // The DER is in crl_chunks (base64 per chunk), or whole in the crls row for a CRL stored before them.
    const { rows } = await sql.query<{ crl_number: string; revocations_covered: string; der: Buffer }>(
      `SELECT crl_number, revocations_covered,
              CASE WHEN chunks = 0 THEN decode(der, 'base64')
                   ELSE (SELECT string_agg(decode(k.bytes, 'base64'), ''::bytea ORDER BY k.seq) FROM crl_chunks k WHERE k.authority_id = crls.authority_id AND k.crl_number = crls.crl_number)
              END AS der
         FROM crls WHERE authority_id = $1 ORDER BY crl_number, revocations_covered`,
      [deviceCa.id],
    );
    const stored = rows.map((row) => ({ number: Number(row.crl_number), covered: Number(row.revocations_covered), der: row.der }));
    for (let i = 1; i < stored.length; i++) {
      assert.ok(stored[i].number > stored[i - 1].number, `stored CRL numbers repeat or go back: ${stored[i - 1].number}, ${stored[i].number}`);
      assert.ok(stored[i].covered >= stored[i - 1].covered, `stored CRL ${stored[i].number} covers fewer revocations than ${stored[i - 1].number}`);
    }
    for (const row of stored) {
      assert.equal(readCrl(row.der).number, row.number, 'the stored CRL carries the number of its row');
      if (byNumber.has(row.number)) assert.deepEqual([...byNumber.get(row.number)!], [sha256(row.der)], `CRL ${row.number} as served = as stored`);
    }
    const [{ crl_number: allocated }] = (await sql.query<{ crl_number: string }>('SELECT crl_number FROM authorities WHERE id = $1', [deviceCa.id])).rows;
    assert.ok(Math.max(...numbers) <= Number(allocated), 'no CRL number beyond what the authority allocated');
    const generated = await Promise.all(replicas.map(async (_, r) => metric(r, 'fleetpki_crls_generated_total', /.*/)));
    t.diagnostic(`CRL numbers seen: ${numbers.join(', ')} (${stored.length} stored, ${allocated} allocated); signed per replica: ${generated.join(', ')}`);
  });

  it(`acknowledges exactly maxDevices (${MAX_DEVICES}) exchanges of ${EXCHANGES} and counts used = maxDevices`, async () => {
    const statuses = exchanges.map((res) => res.status);
    assert.equal(statuses.filter((s) => s === 201).length, MAX_DEVICES, JSON.stringify(statuses));
    const refused = exchanges.filter((res) => res.status !== 201);
    assert.deepEqual(refused.map((res) => [res.status, res.json.code]), refused.map(() => [409, 'CLAIM_QUOTA_EXHAUSTED']));
    for (let r = 0; r < REPLICAS; r++) {
      const claim = await ok(r, 'GET', `/v1/claims/${claimId}`);
      assert.equal(claim.used, MAX_DEVICES, `replica ${r}: used`);
      assert.equal(claim.remaining, 0, `replica ${r}: remaining`);
    }
    assert.equal((await all(0, `/v1/certificates?claimId=${claimId}`)).length, MAX_DEVICES);
  });

  it('runs each outbox job once, on every replica: one AWS registration per certificate, one revocation per revoked one', async () => {
    const certificates = [...acknowledged, ...exchanged];
    const log = iot.requests();
    // (Calls about no certificate are the replicas' own start-up checks, such as looking for a policy.)
    const refused = log.filter((call) => call.certificateId !== null && call.outcome !== 'ok');
    assert.deepEqual(refused.map((call) => `${call.operation} ${call.certificateId}: ${call.outcome}`), [], 'AWS IoT refused no call about a certificate');
    const count = (certificateId: string, match: (call: IotRequestRecord) => boolean) => log.filter((call) => call.certificateId === certificateId && match(call)).length;
    const revokedIds = new Set(revoked.map((r) => r.id));
    const wrong: string[] = [];
    for (const certificate of certificates) {
      const id = certificate.fingerprint;
      const calls = {
        RegisterCertificate: count(id, (c) => c.operation === 'RegisterCertificate'),
        activation: count(id, (c) => c.operation === 'UpdateCertificate' && c.status === 'ACTIVE'),
        AttachThingPrincipal: count(id, (c) => c.operation === 'AttachThingPrincipal'),
        AttachPolicy: count(id, (c) => c.operation === 'AttachPolicy'),
        revocation: count(id, (c) => c.operation === 'UpdateCertificate' && c.status === 'REVOKED'),
        DescribeCertificate: count(id, (c) => c.operation === 'DescribeCertificate'),
      };
      const expected = revokedIds.has(certificate.id) ? 1 : 0;
      const want = { RegisterCertificate: 1, activation: 1, AttachThingPrincipal: 1, AttachPolicy: 1, revocation: expected, DescribeCertificate: expected };
      if (JSON.stringify(calls) !== JSON.stringify(want)) wrong.push(`${certificate.id}: ${JSON.stringify(calls)}, expected ${JSON.stringify(want)}`);
      assert.equal(iot.certificate(id)?.status, expected ? 'REVOKED' : 'ACTIVE');
    }
    assert.deepEqual(wrong, [], 'AWS IoT calls per certificate');

    const { rows } = await sql.query<{ kind: string; n: string; jobs: string; attempts: string }>(
      'SELECT kind, COUNT(DISTINCT target_id) AS n, COUNT(*) AS jobs, SUM(attempts) AS attempts FROM outbox_jobs GROUP BY kind ORDER BY kind',
    );
    const byKind = Object.fromEntries(rows.map((row) => [row.kind, { targets: Number(row.n), jobs: Number(row.jobs), attempts: Number(row.attempts) }]));
    assert.deepEqual(byKind['iot.register-certificate'], { targets: certificates.length, jobs: certificates.length, attempts: certificates.length });
    assert.deepEqual(byKind['iot.revoke-certificate'], { targets: revoked.length, jobs: revoked.length, attempts: revoked.length });
    // Each job counted done by exactly one replica, and every replica ran some.
    const done = await Promise.all(replicas.map((_, r) => metric(r, 'fleetpki_outbox_jobs_total', /outcome="done"/)));
    assert.equal(done.reduce((a, b) => a + b, 0), rows.reduce((sum, row) => sum + Number(row.jobs), 0), `jobs done per replica: ${done.join(', ')}`);
    assert.ok(done.every((n) => n > 0), `every replica ran outbox jobs: ${done.join(', ')}`);
  });

  it('keeps one audit chain that verifies on every replica, with one issuance event per certificate', async () => {
    const verified = await Promise.all(replicas.map((_, r) => ok(r, 'GET', '/v1/audit/verify')));
    for (const [r, result] of verified.entries()) assert.deepEqual({ ok: result.ok, firstBrokenSeq: result.firstBrokenSeq }, { ok: true, firstBrokenSeq: null }, `replica ${r}: ${JSON.stringify(result)}`);
    assert.equal(new Set(verified.map((result) => result.checked)).size, 1, 'every replica checks the same chain');
    const issued = (await all(1, '/v1/audit?action=certificate.issued')).map((e) => (e.details as { serial?: string }).serial);
    const certificates = await all(2, '/v1/certificates');
    assert.deepEqual(issued.map((s) => serialKey(s!)).sort(), certificates.map((c) => serialKey(c.serial as string)).sort());
    const revocations = await all(0, '/v1/audit?action=certificate.revoked');
    assert.equal(revocations.length, revoked.length);
    assert.ok(Date.now() - started < WORK_BUDGET_MS, `the workload and checks took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  /** Sum of a counter's samples on one replica whose labels match. */
  async function metric(replica: number, name: string, labels: RegExp): Promise<number> {
    const text = (await call(replica, 'GET', '/metrics')).bytes.toString();
    return text
      .split('\n')
      .filter((line) => (line.startsWith(`${name}{`) && labels.test(line)) || line.startsWith(`${name} `))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  }
});
