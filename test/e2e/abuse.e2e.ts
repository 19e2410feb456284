import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { bearer, startTestApp, TestApp } from '../support/test-app';

/**
 * Slow and idle clients do not stop the service answering others (docs/limits.md): thousands of connections that
 * never send a byte and slow-loris connections that trickle header lines are held open by a child process (its own
 * file descriptors) while a normal client gets /healthz and an issuance answered within a bound; then the server's
 * timeouts close every one of them. The service and the attacker each hold one descriptor per connection, so the
 * count is 10,000 when `ulimit -n` allows it (the test machine: 20,000), else what it allows, printed.
 */

const FLOOD_SCRIPT = path.join(__dirname, '..', 'support', 'connection-flood.js');
/** What a normal request may take while the flood is held (the 2-core CI VM is loaded by other suites). */
const ANSWER_BOUND_MS = 5_000;
const HEADERS_TIMEOUT_MS = 8_000;

function fileDescriptorLimit(): number {
  const raw = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return raw === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(raw);
}

interface FloodReport {
  opened?: number;
  refused?: number;
  closed?: number;
  answered408?: number;
  stillOpen?: number;
  lastCloseMs?: number;
}

/** Starts the attacker; resolves once its connections are open, with a promise of its final report. */
async function flood(port: number, idle: number, slow: number, localAddress: string, holdMs: number): Promise<{ opened: FloodReport; final: Promise<FloodReport>; child: ChildProcess }> {
  const child = spawn(process.execPath, [FLOOD_SCRIPT, String(port), String(idle), String(slow), localAddress, '300', String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const reports: FloodReport[] = [];
  const waiters: ((report: FloodReport) => void)[] = [];
  lines.on('line', (line) => {
    const report = JSON.parse(line) as FloodReport;
    const waiter = waiters.shift();
    if (waiter) waiter(report);
    else reports.push(report);
  });
  const next = () => new Promise<FloodReport>((resolve) => (reports.length ? resolve(reports.shift()!) : waiters.push(resolve)));
  const opened = await next();
  return { opened, final: next(), child };
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** A raw connection's life: writes `request`, then resolves when the server closes it, with what it answered. */
function connectionLife(port: number, request: string, trickle?: { bytes: string; everyMs: number }): Promise<{ ms: number; answer: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let answer = '';
    const socket = net.connect({ port, host: '127.0.0.1' }, () => {
      socket.write(request);
      if (trickle) {
        const timer = setInterval(() => socket.writable && socket.write(trickle.bytes), trickle.everyMs);
        socket.once('close', () => clearInterval(timer));
      }
    });
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ ms: performance.now() - started, answer }));
  });
}

describe('slow-loris and idle connections do not stop the service answering others', () => {
  let t: TestApp;
  let port: number;
  let authorityId: string;
  let attacker: ChildProcess | undefined;

  before(async () => {
    t = await startTestApp('sqlite', {
      env: { HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), HTTP_REQUEST_TIMEOUT_MS: '10000', HTTP_KEEP_ALIVE_TIMEOUT_MS: '2000' },
    });
    port = Number(new URL(t.baseUrl).port);
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Abuse Root', type: 'root', subject: { commonName: 'Abuse Root' } });
    const issuing = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Abuse Devices', type: 'intermediate', parentId: root.body.id, subject: { commonName: 'Abuse Devices' } });
    assert.equal(issuing.status, 201, issuing.text);
    authorityId = issuing.body.id;
  });
  after(async () => {
    attacker?.kill('SIGKILL');
    await t?.close();
  });

  it('answers /healthz and an issuance within the bound while up to 10,000 idle and slow-loris connections are held, then closes them all', async () => {
    const limit = fileDescriptorLimit();
    // One descriptor per connection on each side, and room for the rest of the process (database, logs, modules).
    const total = Math.min(10_000, limit - 1_000);
    const slow = 200;
    console.log(`abuse: ulimit -n ${limit}: ${total} connections (${total - slow} idle, ${slow} slow-loris)`);
    assert.ok(total >= 1_000, `ulimit -n ${limit} allows too few connections for this test`);

    // From 127.0.0.2, so the service sees the flood as another source than the normal client (127.0.0.1).
    const run = await flood(port, total - slow, slow, '127.0.0.2', HEADERS_TIMEOUT_MS + 10_000);
    attacker = run.child;
    const heldFrom = performance.now();
    assert.equal(run.opened.refused, 0, JSON.stringify(run.opened));
    assert.equal(run.opened.opened, total);

    const probes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const health = await timed(() => t.http().get('/healthz'));
      assert.equal(health.value.status, 200);
      probes.push(health.ms);
      const { csrPem } = deviceKeyAndCsr(`abuse-${i}`);
      const issued = await timed(() => t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId, csr: csrPem, profile: 'device', thingName: `abuse-${i}` }));
      assert.equal(issued.value.status, 201, issued.value.text);
      probes.push(issued.ms);
    }
    const probedWithinMs = performance.now() - heldFrom;
    console.log(`abuse: normal requests answered in ${probes.map((ms) => ms.toFixed(0)).join(', ')} ms while the flood was held`);
    for (const ms of probes) assert.ok(ms < ANSWER_BOUND_MS, `answered in ${ms.toFixed(0)} ms`);
    assert.ok(probedWithinMs < HEADERS_TIMEOUT_MS, `the probes ran while the flood was still open (${probedWithinMs.toFixed(0)} ms)`);

    const final = await run.final;
    console.log(`abuse: ${JSON.stringify(final)}`);
    assert.equal(final.stillOpen, 0, 'the server closed every idle and slow connection');
    assert.equal(final.closed, total);
    assert.ok(final.answered408! >= slow, `the slow-loris connections were answered 408 REQUEST_TIMEOUT (${final.answered408})`);
    // HTTP_HEADERS_TIMEOUT_MS, plus Node's check interval and the time to close 10,000 sockets on a loaded VM.
    assert.ok(final.lastCloseMs! <= HEADERS_TIMEOUT_MS + 6_000, `closed ${final.lastCloseMs} ms after they were all open`);
  });

  it('closes a connection whose body trickles in after HTTP_REQUEST_TIMEOUT_MS', async () => {
    const head = `POST /v1/api-keys HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`;
    const life = await connectionLife(port, head, { bytes: ' ', everyMs: 200 });
    assert.ok(life.ms >= 9_000 && life.ms < 14_000, `closed after ${life.ms.toFixed(0)} ms: ${life.answer}`);
  });

  it('closes an idle keep-alive connection after HTTP_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const life = await connectionLife(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.match(life.answer, /^HTTP\/1\.1 200/);
    assert.ok(life.ms >= 1_900 && life.ms < 5_000, `closed after ${life.ms.toFixed(0)} ms`);
  });
});

describe('connection caps', () => {
  let t: TestApp;
  let attacker: ChildProcess | undefined;
  before(async () => {
    t = await startTestApp('sqlite', { env: { HTTP_MAX_CONNECTIONS_PER_SOURCE: '100', HTTP_MAX_CONNECTIONS: '5000' } });
  });
  after(async () => {
    attacker?.kill('SIGKILL');
    await t?.close();
  });

  it('holds at most HTTP_MAX_CONNECTIONS_PER_SOURCE connections of one address, and still answers another', async () => {
    const run = await flood(Number(new URL(t.baseUrl).port), 1_000, 0, '127.0.0.3', 1_500);
    attacker = run.child;
    const health = await timed(() => t.http().get('/healthz'));
    assert.equal(health.value.status, 200);
    assert.ok(health.ms < ANSWER_BOUND_MS, `answered in ${health.ms.toFixed(0)} ms`);
    const final = await run.final;
    assert.equal(final.stillOpen, 100, JSON.stringify(final));
    assert.equal((t.app.getHttpServer() as { maxConnections?: number }).maxConnections, 5000, 'HTTP_MAX_CONNECTIONS is the server’s maxConnections');
  });
});
