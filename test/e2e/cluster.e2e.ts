import { captureChildOutput } from '../support/log-capture';
import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificateParts } from '../../src/pki/certificate';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { encodeOcspRequest } from '../../tools/clients/ocsp-client';
import { pemDecode } from '../../tools/clients/pem';
import { buildCsr } from '../../tools/csr-builder';
import { eventually } from '../support/eventually';
import { freePort } from '../support/free-port';

/**
 * WORKERS > 1 (src/cluster.ts), the real `node dist/src/main.js` on PostgreSQL: the primary prints the listening
 * line and the initial admin key once, every worker serves, certificates are issued, a revocation reaches the OCSP
 * answers of every worker within OCSP_REVOCATION_POLL_MS, a killed worker is replaced while the others keep
 * answering, and SIGTERM stops them all.
 */

const POLL_MS = 300;

/** One request on its own connection, so node:cluster hands it to the next worker in turn. */
function call(port: number, method: string, route: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: route, agent: false, headers: { Connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The worker slot and pid that answered a /metrics scrape (fleetpki_worker_info). */
async function whoAnswers(port: number): Promise<{ worker: string; pid: number }> {
  const res = await call(port, 'GET', '/metrics');
  assert.equal(res.status, 200);
  const match = /fleetpki_worker_info\{worker="(\d+)",pid="(\d+)"\} 1/.exec(res.body.toString());
  assert.ok(match, 'fleetpki_worker_info is in /metrics');
  return { worker: match[1], pid: Number(match[2]) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The certificate status of the single response of an OCSP answer, read by openssl. */
function certStatus(dir: string, der: Buffer): Promise<string> {
  const file = path.join(dir, `resp-${randomBytes(4).toString('hex')}.der`);
  fs.writeFileSync(file, der);
  return new Promise((resolve, reject) =>
    execFile('openssl', ['ocsp', '-respin', file, '-resp_text', '-noverify'], (err, stdout) => {
      if (err) return reject(err);
      const match = /Cert Status: (\w+)/.exec(stdout);
      resolve(match ? match[1] : `unreadable: ${stdout.slice(0, 200)}`);
    }),
  );
}

describe('WORKERS=2 on PostgreSQL (node:cluster)', { skip: process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set` }, () => {
  let db: TemporaryDatabase;
  let child: ChildProcess;
  let output = '';
  let port: number;
  let dir: string;
  let adminKey: string;

  before(async () => {
    db = await temporaryDatabase('postgres');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-cluster-'));
    // From the kernel, not drawn at random: a random pick in 30000-50000 met a port an outgoing connection held
    // (Linux's ephemeral range starts at 32768), and the service could not listen.
    port = await freePort();
    const env = {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dir,
      DATABASE_URL: db.config.driver === 'postgres' ? db.config.url : '',
      FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex'),
      WORKERS: '2',
      OCSP_REVOCATION_POLL_MS: String(POLL_MS),
      LOG_LEVEL: 'warn',
    };
    child = spawn(process.execPath, [path.resolve(__dirname, '../../src/main.js')], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    captureChildOutput(child, env);
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually('the service listens', () => {
      if (child.exitCode !== null) throw new Error(`service exited: ${output}`);
      // The last line of the announcement: the key (printed between) is complete.
      return output.includes('Authenticate with:');
    }, 60_000);
    adminKey = /Initial admin API key[^\n]*\n\s+(\S+)/.exec(output)![1];
  });

  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints the listening line, with the workers count, and the initial admin key once', () => {
    assert.equal(output.match(/Fleet PKI listening on /g)?.length, 1, output);
    assert.match(output, /listening on http:\/\/127\.0\.0\.1:\d+ \(.*PostgreSQL; 2 workers;/);
    assert.equal(output.match(/Initial admin API key/g)?.length, 1, output);
    assert.match(adminKey, /^fpk_/);
  });

  it('serves from both workers', async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 20 && seen.size < 2; i++) {
      const { worker, pid } = await whoAnswers(port);
      seen.set(worker, pid);
    }
    assert.deepEqual([...seen.keys()].sort(), ['1', '2']);
    assert.notEqual(seen.get('1'), seen.get('2'));
  });

  let caId: string;
  let caPem: string;
  const auth = () => ({ Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' });
  const post = async (route: string, body: unknown) => {
    const res = await call(port, 'POST', route, auth(), JSON.stringify(body));
    return { status: res.status, json: JSON.parse(res.body.toString() || '{}') as Record<string, string> };
  };

  it('issues certificates through either worker', async () => {
    const root = await post('/v1/authorities', { name: 'Cluster Root', type: 'root', subject: { commonName: 'Cluster Root' } });
    assert.equal(root.status, 201, JSON.stringify(root.json));
    const ca = await post('/v1/authorities', { name: 'Cluster Issuing', type: 'intermediate', parentId: root.json.id, subject: { commonName: 'Cluster Issuing' } });
    assert.equal(ca.status, 201, JSON.stringify(ca.json));
    caId = ca.json.id;
    caPem = ca.json.certificatePem;
    const issued = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post('/v1/certificates', { authorityId: caId, csr: buildCsr({ commonName: `cluster-${i}` }), profile: 'device', thingName: `cluster-${i}` })),
    );
    assert.deepEqual(issued.map((r) => r.status), issued.map(() => 201), JSON.stringify(issued.find((r) => r.status !== 201)?.json));
    assert.equal(new Set(issued.map((r) => r.json.serial)).size, 12);
  });

  it(`reflects a revocation in the OCSP answers of every worker within OCSP_REVOCATION_POLL_MS (${POLL_MS} ms)`, async () => {
    const cert = await post('/v1/certificates', { authorityId: caId, csr: buildCsr({ commonName: 'cluster-ocsp' }), profile: 'device', thingName: 'cluster-ocsp' });
    assert.equal(cert.status, 201);
    const { subject: issuerName, subjectPublicKeyInfo: issuerSpki } = certificateParts(pemDecode(caPem, ['CERTIFICATE'])!);
    const request = encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from(cert.json.serial, 'hex') }]);
    const ask = async (nonce = false) => {
      const body = nonce ? encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from(cert.json.serial, 'hex') }], randomBytes(16)) : request;
      return certStatus(dir, (await call(port, 'POST', '/ocsp', { 'Content-Type': 'application/ocsp-request' }, body)).body);
    };
    // Both workers sign and keep a reusable answer, and know the certificate's state (nonce requests): good.
    for (let i = 0; i < 6; i++) assert.equal(await ask(i % 2 === 0), 'good');
    const revoked = await post(`/v1/certificates/${cert.json.id}/revoke`, { reason: 'keyCompromise' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
    // The worker that revoked answers revoked at once; the other after its next poll (every POLL_MS; the bound leaves
    // room for a loaded machine, where a fixed sleep of one interval raced the poll).
    let statuses: string[] = [];
    await eventually('every worker answers revoked', async () => {
      statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => ask(i % 2 === 0)));
      return statuses.every((s) => s === 'revoked');
    }, POLL_MS + 5000, 50).catch((err: Error) => assert.fail(`${err.message}: ${statuses.join(', ')}`));
  });

  it('replaces a worker killed with SIGKILL while the other keeps answering', async () => {
    const victim = await whoAnswers(port);
    process.kill(victim.pid, 'SIGKILL');
    await eventually('the primary sees the worker die', () => output.includes(`(pid ${victim.pid}) exited unexpectedly (signal SIGKILL); restarting it`));
    for (let i = 0; i < 10; i++) assert.equal((await call(port, 'GET', '/healthz')).status, 200);
    await eventually('a new worker takes the slot', async () => {
      const { worker, pid } = await whoAnswers(port);
      return worker === victim.worker && pid !== victim.pid;
    }, 60_000);
    // The worker listens first, then tells the primary, which logs it: the line may follow the first answers.
    await eventually('the primary logs the worker serving again', () => new RegExp(`worker ${victim.worker} \\(pid \\d+\\) is serving again`).test(output));
    const after = await post('/v1/certificates', { authorityId: caId, csr: buildCsr({ commonName: 'cluster-after' }), profile: 'device', thingName: 'cluster-after' });
    assert.equal(after.status, 201);
  });

  it('stops every worker on SIGTERM, then exits 0', async () => {
    const pids = new Set<number>();
    for (let i = 0; i < 20 && pids.size < 2; i++) pids.add((await whoAnswers(port)).pid);
    assert.equal(pids.size, 2);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    for (const pid of pids) await eventually(`worker ${pid} is gone`, () => !alive(pid), 10_000);
  });
});
