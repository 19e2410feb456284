import { captureChildOutput } from '../support/log-capture';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, TestContext } from 'node:test';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { buildCsr } from '../../tools/csr-builder';
import { freePort } from '../support/free-port';

/**
 * kill -9 during issuance load (docs/benchmarks.md, "Crash test"): the real service (`node dist/src/main.js`, its own
 * process group) on a fresh database takes issuance from 32 concurrent clients; after a random 0.5-2 s of load the
 * whole process group (a cluster primary and its workers alike) gets SIGKILL, and the service restarts on the same
 * data. After a few rounds: every certificate the service acknowledged (201) is there with the same serial, no two
 * certificates share a serial, every certificate has exactly one certificate.issued audit event, and the audit chain
 * verifies. Behaviour only: nothing here measures speed.
 *
 * Run alone with `npm run test:crash`; `npm test` runs it too (CI).
 */

const CLIENTS = 32;
const KILLS = 3;
/** Answers a service may legitimately give under load (shedding it), which are not acknowledgements. */
const SHEDDING = new Set([429, 503]);
const MAIN = path.resolve(__dirname, '../../src/main.js');

interface Acknowledged {
  id: string;
  serial: string;
  thingName: string;
  round: number;
}


/** One start of the service on fixed data (directory, database, keys); each start listens on a port of its own. */
class ServiceUnderTest {
  child?: ChildProcess;
  baseUrl = '';
  log = '';
  private exited?: Promise<number | null>;

  constructor(
    private readonly env: Record<string, string>,
    readonly adminKey: string,
  ) {}

  /** Starts and waits until it listens; resolves to the exit code instead if it exits first (a refused setting). */
  async start(): Promise<number | undefined> {
    const port = await freePort();
    this.baseUrl = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', PUBLIC_BASE_URL: this.baseUrl, LOG_LEVEL: 'warn', FLEET_PKI_BOOTSTRAP_ADMIN_KEY: this.adminKey, ...this.env },
      // Its own process group: SIGKILL to the group reaches every process of the service at once.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    captureChildOutput(child, { FLEET_PKI_BOOTSTRAP_ADMIN_KEY: this.adminKey, ...this.env });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const onOutput = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stderr!.on('data', onOutput);
    return new Promise<number | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service did not listen within 60 s:\n${this.log}`)), 60_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        onOutput(chunk);
        if (chunk.toString().includes('listening')) {
          clearTimeout(timer);
          resolve(undefined);
        }
      });
      void this.exited!.then((code) => {
        clearTimeout(timer);
        resolve(code ?? -1);
      });
    });
  }

  /** The processes of the service: the one started and its children (a cluster's workers). */
  processes(): number[] {
    const pid = this.child!.pid!;
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean).map(Number) ?? [];
    return [pid, ...children];
  }

  /** kill -9 of the whole process group; resolves when the process started is gone. */
  async kill9(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
    await this.exited;
    // Workers of a cluster are in the group too; give the kernel a moment to reap them before the data is reused.
    for (let i = 0; i < 50 && spawnSync('pgrep', ['-g', String(this.child.pid)]).status === 0; i++) await new Promise((r) => setTimeout(r, 100));
  }

  async request(method: string, route: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.baseUrl}${route}`, {
      method,
      headers: { Authorization: `Bearer ${this.adminKey}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async ok(method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.request(method, route, body);
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${route}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Every item of a cursor-paged list. */
  async all(route: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page = await this.ok('GET', `${route}${route.includes('?') ? '&' : '?'}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...(page.items as Record<string, unknown>[]));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    return items;
  }
}

/**
 * One round: CLIENTS closed-loop clients issue until the service dies under them. The kill comes a random 0.5-2 s
 * after the first acknowledgement of the round, so it always lands in the middle of the load.
 */
async function loadAndKill(service: ServiceUnderTest, authorityId: string, round: number, acknowledged: Acknowledged[], refused: string[]): Promise<number> {
  let killed = false;
  let firstAck: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (firstAck = resolve));
  let count = 0;
  let sequence = 0;
  const client = async (c: number) => {
    while (!killed) {
      const thingName = `crash-r${round}-c${c}-${sequence++}`;
      let res: Response;
      try {
        res = await fetch(`${service.baseUrl}/v1/certificates`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${service.adminKey}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ authorityId, csr: buildCsr({ commonName: thingName }), profile: 'device', thingName }),
        });
      } catch {
        // The connection died with the service: not acknowledged, nothing to expect.
        if (!killed) await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const text = await res.text().catch(() => undefined);
      // A 201 whose body never arrived whole is not an acknowledgement the client could act on.
      if (text === undefined) continue;
      if (res.status === 201) {
        const body = JSON.parse(text) as { id: string; serial: string };
        acknowledged.push({ id: body.id, serial: body.serial, thingName, round });
        count++;
        firstAck();
      } else if (!SHEDDING.has(res.status)) {
        refused.push(`round ${round}: ${res.status} ${text.slice(0, 300)}`);
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
  const firstAckTimeout = setTimeout(() => firstAck(), 30_000);
  await started;
  clearTimeout(firstAckTimeout);
  await new Promise((r) => setTimeout(r, randomInt(500, 2001)));
  await service.kill9();
  killed = true;
  await Promise.all(clients);
  return count;
}

async function crashTest(t: TestContext, driver: 'sqlite' | 'postgres', kills: number, extraEnv: Record<string, string> = {}): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-crash-'));
  let db: TemporaryDatabase | undefined;
  const env: Record<string, string> = { DATA_DIR: dataDir, ...extraEnv };
  if (driver === 'postgres') {
    db = await temporaryDatabase('postgres');
    if (db.config.driver !== 'postgres') throw new Error('expected a PostgreSQL database');
    env.DATABASE_URL = db.config.url;
    env.FLEET_PKI_MASTER_KEY = randomBytes(32).toString('hex');
  }
  const service = new ServiceUnderTest(env, generateApiKey().key);
  const phases: string[] = [];
  let phaseStart = Date.now();
  const phase = (name: string) => {
    phases.push(`${name} ${((Date.now() - phaseStart) / 1000).toFixed(1)} s`);
    phaseStart = Date.now();
  };
  try {
    const exit = await service.start();
    phase('start');
    if (exit !== undefined) {
      if (extraEnv.WORKERS && extraEnv.WORKERS !== '1') return t.skip(`the service refused WORKERS=${extraEnv.WORKERS} (exit ${exit}): ${service.log.trim().split('\n').pop()}`);
      assert.fail(`the service exited with ${exit} at start:\n${service.log}`);
    }
    if (extraEnv.WORKERS && extraEnv.WORKERS !== '1' && service.processes().length < 2) {
      await service.kill9();
      return t.skip(`the service runs as one process with WORKERS=${extraEnv.WORKERS}: it does not support WORKERS (yet)`);
    }
    const root = await service.ok('POST', '/v1/authorities', { name: 'Crash Root', type: 'root', subject: { commonName: 'Crash Root' } });
    const ca = await service.ok('POST', '/v1/authorities', { name: 'Crash Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Crash Issuing' } });

    const acknowledged: Acknowledged[] = [];
    const refused: string[] = [];
    const perRound: number[] = [];
    for (let round = 1; round <= kills; round++) {
      perRound.push(await loadAndKill(service, ca.id as string, round, acknowledged, refused));
      phase(`load+kill ${round}`);
      const exit = await service.start();
      phase('restart');
      assert.equal(exit, undefined, `the service did not restart after kill -9 number ${round}:\n${service.log}`);
    }
    t.diagnostic(`${driver}${extraEnv.WORKERS ? ` WORKERS=${extraEnv.WORKERS}` : ''}: ${service.processes().length} process(es); acknowledged per round before kill -9: ${perRound.join(', ')}`);
    assert.deepEqual(refused, [], 'answers other than 201 (or load shedding) during the load');
    assert.ok(perRound.every((n) => n > 0), `every round must acknowledge certificates before the kill: ${perRound.join(', ')}`);

    // 1. Every acknowledged certificate is there, with the serial it was acknowledged with.
    const lost: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < acknowledged.length) {
          const ack = acknowledged[next++];
          const res = await service.request('GET', `/v1/certificates/${ack.id}`);
          if (res.status !== 200 || res.body.serial !== ack.serial || res.body.thingName !== ack.thingName) {
            lost.push(`round ${ack.round} ${ack.id} (${ack.serial}): ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
          }
        }
      }),
    );
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged certificates lost or changed after kill -9`);

    // 2. No two certificates share a serial (nor an id).
    const certificates = await service.all('/v1/certificates');
    const serials = certificates.map((c) => c.serial as string);
    assert.equal(new Set(serials).size, serials.length, 'duplicate serials');
    assert.equal(new Set(certificates.map((c) => c.id)).size, certificates.length, 'duplicate ids');
    assert.ok(certificates.length >= acknowledged.length, `${certificates.length} certificates listed, ${acknowledged.length} acknowledged`);
    const listed = new Set(serials);
    assert.deepEqual(acknowledged.filter((a) => !listed.has(a.serial)), [], 'acknowledged certificates missing from the list');

    // 3. Exactly one certificate.issued event per certificate (nothing committed without its audit, or twice).
    const issued = (await service.all('/v1/audit?action=certificate.issued')).map((e) => (e.details as { serial?: string } | undefined)?.serial);
    assert.equal(issued.length, certificates.length, `${issued.length} certificate.issued events for ${certificates.length} certificates`);
    assert.deepEqual([...issued].sort(), [...serials].sort(), 'the certificate.issued events name other serials than the certificates');

    // 4. The hash chain survived every kill.
    const verify = await service.ok('GET', '/v1/audit/verify');
    assert.equal(verify.ok, true, `audit chain broken after kill -9: ${JSON.stringify(verify)}`);
    phase('checks');
    t.diagnostic(phases.join(', '));
  } catch (err) {
    t.diagnostic(`service output (last lines):\n${service.log.split('\n').slice(-30).join('\n')}`);
    throw err;
  } finally {
    await service.kill9();
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL crash test skipped: ${PG_ENV} is not set`;

// PostgreSQL: once as one process (WORKERS=1, also where the service's default would be a cluster) and once as a
// cluster of two workers (fewer kills: a cluster takes longest to restart, and the test must stay short).
describe('kill -9 during issuance load', () => {
  it(`sqlite: ${KILLS} kills; no acknowledged certificate lost, no duplicate serial, audit per certificate, chain verifies`, (t) => crashTest(t, 'sqlite', KILLS));
  it(`postgres, one process: ${KILLS} kills; same checks`, { skip: pgSkip }, (t) => crashTest(t, 'postgres', KILLS, { WORKERS: '1' }));
  it('postgres with WORKERS=2 (skipped when the service does not support WORKERS): 2 kills; same checks', { skip: pgSkip }, (t) => crashTest(t, 'postgres', 2, { WORKERS: '2' }));
});
