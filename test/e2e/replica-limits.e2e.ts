import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { Client } from 'pg';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { buildCsr } from '../../tools/csr-builder';
import { IotStandIn } from '../../tools/standins';
import { eventually } from '../support/eventually';
import { freePort } from '../support/free-port';
import { Logger } from '@nestjs/common';
import { captureChildOutput, capturingLogger, plantCanary } from '../support/log-capture';

/**
 * Replica-wide limits and schedules (docs/limits.md, "Replica-wide budgets" and "Periodic work"): three service
 * processes on one PostgreSQL database issue ISSUANCES certificates by the API for a device CA registered with AWS IoT
 * in API mode, so each certificate gets an outbox job that registers it (RegisterCertificate, AttachPolicy,
 * CreateThing, AttachThingPrincipal, UpdateCertificate). Each AWS IoT target (a stand-in) throttles every operation at
 * TPS calls per second (its bucket holds one second), and the replicas' IOT_RATE_LIMITS say TPS too: the three must
 * share the budget, or the stand-in's throttle counter moves. Checked:
 * - no call throttled by any stand-in, and the busiest second per operation (as the stand-in saw it) within TPS plus
 *   the bucket's one second;
 * - every certificate ACTIVE in its stand-in, registered exactly once (the request log counts RegisterCertificate per
 *   certificate), every outbox job done;
 * - the fleet-audit schedule (FLEET_AUDIT_INTERVAL_SECONDS) ran once per interval across the three: scheduled audits
 *   at least an interval apart, and as many as the run's length allows.
 * TARGETS lists the AWS IoT targets (docs/iot-targets.md), each its own stand-in (an AWS account) with its own budget:
 * the default one (AWS_ENDPOINT_URL_IOT) and a second added by the API. The `device` profile's allocation
 * (IOT_PROFILE_ALLOCATION, weighted by thing name) sends about half the certificates to each, so the run lasts at least
 * ISSUANCES / (TPS × targets) seconds (about 100 s): the pacing is the point.
 */

const REPLICAS = 3;
const ISSUANCES = Number(process.env.REPLICA_LIMITS_ISSUANCES ?? 2000);
const ISSUERS = 6;
const TPS = 10;
const AUDIT_INTERVAL_SECONDS = 20;
/** The operations an API-mode registration and a fleet audit make, each throttled by the stand-in at TPS. */
const PACED_OPERATIONS = ['RegisterCertificate', 'AttachPolicy', 'CreateThing', 'AttachThingPrincipal', 'UpdateCertificate', 'DescribeCertificate', 'ListCertificatesByCA', 'ListAttachedPolicies', 'GetPolicy'];
const MAIN = path.resolve(__dirname, '../../src/main.js');
const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set`;

/** One AWS IoT target: its stand-in (an AWS account of its own) and the account id the service knows it by. */
interface Target {
  name: string;
  accountId?: string;
  iot?: IotStandIn;
}
const TARGETS: Target[] = [{ name: 'default' }, { name: 'second', accountId: '222222222222' }];
const PROFILE_ALLOCATION = { device: { mode: 'weighted', weights: Object.fromEntries(TARGETS.map((target) => [target.name, 1])) } };

class Replica {
  url = '';
  log = '';
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-replica-limits-'));

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

/** The most calls of one operation the stand-in received within any one second. */
function busiestSecond(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i] - sorted[j] >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe('replica-wide limits: three replicas share the AWS IoT budgets and the fleet-audit schedule', { skip: pgSkip }, () => {
  const replicas = Array.from({ length: REPLICAS }, (_, i) => new Replica(i));
  const adminKey = generateApiKey().key;
  let db: TemporaryDatabase;
  let sql: Client;
  let deviceCaId = '';

  async function ok(replica: number, method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${replicas[replica].url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.ok(res.status >= 200 && res.status < 300, `replica ${replica}: ${method} ${route}: ${res.status} ${text.slice(0, 500)}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }

  before(async () => {
    // The replicas are child processes (their output is captured); the canary proves the secret scan reads this run's logs.
    const capturing = capturingLogger('warn');
    if (capturing) Logger.overrideLogger(capturing);
    plantCanary();
    db = await temporaryDatabase('postgres');
    if (db.config.driver !== 'postgres') throw new Error('expected a PostgreSQL database');
    sql = new Client({ connectionString: db.config.url });
    await sql.connect();
    for (const target of TARGETS) {
      target.iot = await new IotStandIn({ latencyMs: 5, tps: 0, operationTps: Object.fromEntries(PACED_OPERATIONS.map((operation) => [operation, TPS])) }).start();
      await new IoTClient({ region: target.iot.region, endpoint: target.iot.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }).send(
        new CreatePolicyCommand({ policyName: 'fleet-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
      );
    }
    const iot = TARGETS[0].iot!;
    const env = {
      DATABASE_URL: db.config.url,
      FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex'),
      FLEET_PKI_BOOTSTRAP_ADMIN_KEY: adminKey,
      PUBLIC_BASE_URL: 'http://pki.replica-limits.test',
      AWS_REGION: iot.region,
      AWS_ENDPOINT_URL_IOT: iot.endpoint,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_EC2_METADATA_DISABLED: 'true',
      IOT_RATE_LIMITS: PACED_OPERATIONS.map((operation) => `${operation}=${TPS}`).join(','),
      IOT_PROFILE_ALLOCATION: JSON.stringify(PROFILE_ALLOCATION),
      // The second target's endpoint is a stand-in's (plain http, localhost): allowed for tests only.
      IOT_TARGET_ENDPOINTS_ANY: 'true',
      FLEET_AUDIT_INTERVAL_SECONDS: String(AUDIT_INTERVAL_SECONDS),
      OUTBOX_POLL_MS: '50',
      OUTBOX_BACKOFF_BASE_MS: '50',
      OUTBOX_BACKOFF_MAX_MS: '500',
      RATE_LIMIT_API_KEY: 'off',
      RATE_LIMIT_SOURCE: 'off',
      LOG_LEVEL: 'warn',
    };
    await replicas[0].start(env);
    await Promise.all(replicas.slice(1).map((replica) => replica.start(env)));
    const root = await ok(0, 'POST', '/v1/authorities', { name: 'Limits Root', type: 'root', subject: { commonName: 'Limits Root' } });
    const deviceCa = await ok(1, 'POST', '/v1/authorities', { name: 'Limits Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Limits Devices CA' } });
    deviceCaId = deviceCa.id as string;
    for (const target of TARGETS.slice(1)) {
      await ok(0, 'POST', '/v1/iot/targets', { id: target.name, accountId: target.accountId, region: target.iot!.region, endpoint: target.iot!.endpoint });
    }
    for (const target of TARGETS) {
      await ok(2, 'POST', `/v1/authorities/${deviceCaId}/iot-registration`, { targetId: target.name, certificateMode: 'SNI_ONLY', deviceRegistration: 'api', policyName: 'fleet-device' });
    }
  }, { timeout: 4 * 60_000 });

  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await sql?.end();
    for (const target of TARGETS) await target.iot?.stop();
    await db?.drop();
  });

  it(`registers ${ISSUANCES} certificates in ${TARGETS.length} targets at ${TPS} TPS per operation each, across ${REPLICAS} replicas, without a throttled call, each once`, { timeout: 30 * 60_000 }, async () => {
    const started = Date.now();
    const issued: { id: string; fingerprint: string; target: Target }[] = [];
    await Promise.all(
      Array.from({ length: ISSUERS }, async (_, client) => {
        for (let i = client; i < ISSUANCES; i += ISSUERS) {
          const thingName = `limits-device-${i}`;
          const body = await ok(i % REPLICAS, 'POST', '/v1/certificates', { authorityId: deviceCaId, csr: buildCsr({ commonName: thingName }), profile: 'device', thingName });
          const target = TARGETS.find((candidate) => candidate.name === (body.iot as { targetId?: string } | undefined)?.targetId);
          assert.ok(target, `${thingName}: allocated to an unknown target: ${JSON.stringify(body.iot)}`);
          issued.push({ id: body.id as string, fingerprint: body.fingerprint as string, target });
        }
      }),
    );
    const issuedSeconds = (Date.now() - started) / 1000;
    // Both targets take a fair share (weighted 1:1 by a hash of the thing name).
    const shares = TARGETS.map((target) => issued.filter((c) => c.target === target).length);
    console.log(`replica-limits: certificates per target ${JSON.stringify(Object.fromEntries(TARGETS.map((target, k) => [target.name, shares[k]])))}`);
    for (const share of shares) assert.ok(share > ISSUANCES / TARGETS.length / 2, `an unfair split: ${shares.join(' / ')}`);
    // At TPS registrations a second per target, plus a margin for a loaded machine.
    await eventually(
      'every certificate is ACTIVE in its own target, and absent from the others',
      () => issued.every((c) => TARGETS.every((target) => target.iot!.certificate(c.fingerprint)?.status === (target === c.target ? 'ACTIVE' : undefined))),
      (Math.max(...shares) / TPS) * 1000 * 2 + 60_000,
      1000,
    );
    const registeredSeconds = (Date.now() - started) / 1000;
    await eventually('every outbox job is done', async () => (await sql.query(`SELECT count(*)::int AS n FROM outbox_jobs WHERE status <> 'done'`)).rows[0].n === 0, 60_000, 500);
    // Let at least one more audit tick pass with everything registered.
    await new Promise((resolve) => setTimeout(resolve, AUDIT_INTERVAL_SECONDS * 1000));
    const elapsedSeconds = (Date.now() - started) / 1000;

    for (const target of TARGETS) {
      const requests = target.iot!.requests();
      const report: Record<string, unknown> = { target: target.name, throttled: target.iot!.throttled, issuedSeconds, registeredSeconds, elapsedSeconds };
      for (const operation of PACED_OPERATIONS) {
        const times = requests.filter((r) => r.operation === operation).map((r) => r.at);
        if (times.length === 0) continue;
        const span = (Math.max(...times) - Math.min(...times)) / 1000;
        report[operation] = { calls: times.length, busiestSecond: busiestSecond(times), meanPerSecond: Number((times.length / Math.max(span, 1)).toFixed(2)) };
        assert.ok(busiestSecond(times) <= 2 * TPS, `${target.name}: ${operation}: ${busiestSecond(times)} calls in one second`);
      }
      console.log(`replica-limits: ${JSON.stringify(report)}`);
      assert.equal(target.iot!.throttled, 0, `${target.name}: throttled calls: ${JSON.stringify(Object.fromEntries(target.iot!.throttledByOperation))}`);
    }

    // Each certificate registered exactly once (in its own target: the others never saw it, checked above), and ACTIVE.
    const registrations = new Map<string, number>();
    for (const target of TARGETS) {
      for (const r of target.iot!.requests()) if (r.operation === 'RegisterCertificate' && r.certificateId) registrations.set(r.certificateId, (registrations.get(r.certificateId) ?? 0) + 1);
    }
    const notOnce = issued.filter((c) => registrations.get(c.fingerprint) !== 1);
    assert.deepEqual(notOnce.slice(0, 5).map((c) => `${c.fingerprint}: ${registrations.get(c.fingerprint) ?? 0}`), [], `${notOnce.length} certificates not registered exactly once`);
    assert.equal(issued.length, ISSUANCES);
    const jobs = (await sql.query(`SELECT status, count(*)::int AS n FROM outbox_jobs GROUP BY status`)).rows;
    assert.deepEqual(jobs.map((row) => row.status), ['done'], `outbox jobs by status: ${JSON.stringify(jobs)}`);

    // The fleet-audit schedule: once per interval across the three replicas.
    const audits = (await sql.query(`SELECT started_at FROM fleet_audits WHERE trigger = 'scheduled' ORDER BY started_at`)).rows.map((row) => new Date(row.started_at as string).getTime());
    const gaps = audits.slice(1).map((at, k) => at - audits[k]);
    console.log(`replica-limits: ${audits.length} scheduled audits in ${elapsedSeconds.toFixed(0)} s, gaps ${gaps.map((gap) => (gap / 1000).toFixed(1)).join(' ')} s`);
    assert.ok(gaps.every((gap) => gap >= AUDIT_INTERVAL_SECONDS * 1000), `two scheduled audits less than an interval apart: ${gaps.join(', ')} ms`);
    // A run is due an interval after the last; a check comes every quarter interval, so at most 1.25 intervals apart.
    assert.ok(audits.length >= Math.floor(elapsedSeconds / (AUDIT_INTERVAL_SECONDS * 1.25)) - 1, `only ${audits.length} scheduled audits in ${elapsedSeconds} s`);
    assert.ok(audits.length <= Math.ceil(elapsedSeconds / AUDIT_INTERVAL_SECONDS) + 1, `${audits.length} scheduled audits in ${elapsedSeconds} s`);
  });
});
