import { captureChildOutput } from '../support/log-capture';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { Errors, finalError } from '../../src/common/errors';
import { Transactions } from '../../src/database/transactions';
import { OutboxRepository } from '../../src/jobs/outbox.repository';
import { OutboxService } from '../../src/jobs/outbox.service';
import { temporaryDatabase, TemporaryDatabase } from '../../scripts/lib/temporary-database';
import { CreatePolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { buildCsr } from '../../tools/csr-builder';
import { IotStandIn } from '../../tools/standins';
import { drivers, startReplicas, startTestApp, TestApp } from '../support/test-app';
import { eventually } from '../support/eventually';
import { freePort } from '../support/free-port';

const FAST = { OUTBOX_POLL_MS: '20', OUTBOX_BATCH_SIZE: '5', OUTBOX_BACKOFF_BASE_MS: '20', OUTBOX_BACKOFF_MAX_MS: '100' };


async function countByStatus(app: TestApp, status: string, kind: string): Promise<number> {
  const [row] = await app.app.get(DataSource).query(`SELECT COUNT(*) AS n FROM outbox_jobs WHERE status = '${status}' AND kind = '${kind}'`);
  return Number(row.n);
}

/** The outbox on PostgreSQL with two worker processes' worth of pollers on one database. */
for (const { driver, skip } of drivers().filter((d) => d.driver === 'postgres')) {
  describe('outbox with two workers on one PostgreSQL database', { skip }, () => {
    let replicas: Awaited<ReturnType<typeof startReplicas>>;
    let a: TestApp;
    let b: TestApp;
    before(async () => {
      replicas = await startReplicas(driver, FAST);
      ({ a, b } = replicas);
    });
    after(async () => {
      await replicas?.close();
    });

    it('never runs one job twice at the same time, and runs each exactly once', async () => {
      const JOBS = 150;
      const running = new Map<string, number>();
      const runs = new Map<string, number>();
      const workers = new Set<string>();
      let overlaps = 0;
      for (const app of [a, b]) {
        app.app.get(OutboxService).register('test.probe', {
          run: async (_payload, job) => {
            if ((running.get(job.id) ?? 0) > 0) overlaps++;
            running.set(job.id, (running.get(job.id) ?? 0) + 1);
            runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
            workers.add(job.lockedBy!);
            await new Promise((r) => setTimeout(r, 2 + Math.random() * 10));
            running.set(job.id, running.get(job.id)! - 1);
          },
        });
      }
      await a.app.get(Transactions).run(async () => {
        for (let i = 0; i < JOBS; i++) await a.app.get(OutboxService).enqueue({ kind: 'test.probe', payload: { i } });
      });
      await eventually('all jobs done', async () => (await countByStatus(a, 'done', 'test.probe')) === JOBS);
      assert.equal(overlaps, 0);
      assert.equal(runs.size, JOBS);
      assert.ok([...runs.values()].every((n) => n === 1), 'each job ran once');
      assert.ok(workers.size >= 2, `both workers took jobs (${[...workers].join(', ')})`);
    });
  });
}

/**
 * The same with two real service processes on one PostgreSQL database, running real jobs (topic rule
 * destination confirmations) against the IoT stand-in: each token must reach AWS exactly once.
 */
for (const { driver, skip } of drivers().filter((d) => d.driver === 'postgres')) {
  describe('outbox with two service processes on one PostgreSQL database', { skip }, () => {
    let shared: TemporaryDatabase;
    let iot: IotStandIn;
    const adminKey = generateApiKey().key;
    const services: { url: string; stop: () => void }[] = [];
    before(async () => {
      shared = await temporaryDatabase(driver);
      iot = await new IotStandIn({ latencyMs: 10 }).start();
      await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(
        new CreatePolicyCommand({ policyName: 'fleet-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
      );
      const env = {
        DATABASE_URL: (shared.config as { url: string }).url,
        FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex'),
        FLEET_PKI_BOOTSTRAP_ADMIN_KEY: adminKey,
        AWS_REGION: iot.region,
        AWS_ENDPOINT_URL_IOT: iot.endpoint,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_EC2_METADATA_DISABLED: 'true',
        LOG_LEVEL: 'warn',
        // Two processes of one worker each: the test is about two pollers, not about a cluster per process.
        WORKERS: '1',
        ...FAST,
      };
      // One after the other: the first runs the migrations.
      for (let i = 0; i < 2; i++) services.push(await startServiceProcess(env));
    });
    after(async () => {
      for (const service of services) service.stop();
      await iot?.stop();
      await shared?.drop();
    });

    async function api(service: number, route: string, body: unknown): Promise<Record<string, unknown>> {
      const res = await fetch(`${services[service].url}${route}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      assert.ok(res.status < 300, JSON.stringify(json));
      return json;
    }

    it('makes each AWS registration exactly once with both processes polling (API mode)', async () => {
      const COUNT = 40;
      const root = await api(0, '/v1/authorities', { name: 'r', type: 'root', subject: { commonName: 'Two Process Root' } });
      const ca = await api(0, '/v1/authorities', { name: 'i', type: 'intermediate', parentId: root.id, subject: { commonName: 'Two Process CA' } });
      await api(0, `/v1/authorities/${ca.id}/iot-registration`, { certificateMode: 'SNI_ONLY', deviceRegistration: 'api', policyName: 'fleet-device' });
      const issued = await Promise.all(
        Array.from({ length: COUNT }, (_, i) =>
          api(i % 2, '/v1/certificates', { authorityId: ca.id, csr: buildCsr({ commonName: `two-proc-${i}` }), profile: 'device', thingName: `two-proc-${i}` }),
        ),
      );
      await eventually('every certificate active in AWS IoT', async () => issued.every((c) => iot.certificate(String(c.fingerprint))?.status === 'ACTIVE'));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(iot.calls.get('RegisterCertificate'), COUNT, 'one RegisterCertificate per job: none ran twice');
      assert.equal(iot.calls.get('AttachThingPrincipal'), COUNT);
    });
  });
}

async function startServiceProcess(env: Record<string, string>): Promise<{ url: string; stop: () => void }> {
  const port = await freePort(); // from the kernel: a random pick could be a port an outgoing connection holds
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-proc-'));
  const child = spawn(process.execPath, [path.resolve(__dirname, '../../src/main.js')], {
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  captureChildOutput(child, env);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    // Generous: on a loaded CI machine a start takes tens of seconds.
    await eventually('the service listens', async () => {
      if (child.exitCode !== null) throw new Error(`service exited: ${output}`);
      return output.includes('listening');
    }, 120_000);
  } catch (err) {
    child.kill('SIGKILL'); // never leave a half-started service behind to keep the test file from exiting
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

for (const { driver, skip } of drivers()) {
  describe(`outbox retries and dead letters on ${driver}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(driver, { env: { ...FAST, OUTBOX_MAX_ATTEMPTS: '3', OUTBOX_LEASE_MS: '1000' } });
    });
    after(async () => {
      await t?.close();
    });

    it('retries a failing job with backoff, then dead-letters it and tells its handler', async () => {
      const attempts: number[] = [];
      let dead: string | undefined;
      t.app.get(OutboxService).register('test.failing', {
        run: async (_payload, job) => {
          attempts.push(Date.now());
          throw new Error(`failure ${job.attempts}`);
        },
        onDead: async (_payload, error) => {
          dead = error;
        },
      });
      await t.app.get(Transactions).run(() => t.app.get(OutboxService).enqueue({ kind: 'test.failing', payload: {} }));
      // The handler is told after the dead state commits (and, on SQLite, after its WAL flush): wait for both.
      await eventually('the job is dead and its handler told', async () => (await countByStatus(t, 'dead', 'test.failing')) === 1 && dead !== undefined);
      assert.equal(attempts.length, 3);
      assert.equal(dead, 'failure 3');
      const [row] = await t.app.get(DataSource).query("SELECT attempts, last_error FROM outbox_jobs WHERE kind = 'test.failing'");
      assert.equal(Number(row.attempts), 3);
      assert.equal(row.last_error, 'failure 3');
    });

    it('dead-letters at once a job that fails with a final error (an AWS hard limit), naming it in lastError', async () => {
      let runs = 0;
      let dead: string | undefined;
      t.app.get(OutboxService).register('test.hard-limit', {
        run: async () => {
          runs++;
          throw finalError(Errors.awsLimitExceeded('AWS IoT refused AttachPolicy: at most 10 AWS IoT policies attached to one certificate is reached'));
        },
        onDead: async (_payload, error) => {
          dead = error;
        },
      });
      await t.app.get(Transactions).run(() => t.app.get(OutboxService).enqueue({ kind: 'test.hard-limit', payload: {} }));
      await eventually('the job is dead and its handler told', async () => (await countByStatus(t, 'dead', 'test.hard-limit')) === 1 && dead !== undefined);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(runs, 1, 'no retry');
      assert.match(dead ?? '', /^AWS_LIMIT_EXCEEDED: .*at most 10 AWS IoT policies/);
      const [row] = await t.app.get(DataSource).query("SELECT attempts, last_error FROM outbox_jobs WHERE kind = 'test.hard-limit'");
      assert.equal(Number(row.attempts), 1);
      assert.match(row.last_error, /AWS_LIMIT_EXCEEDED/);
    });

    it('keeps retrying a retry-forever job (a revocation) even on a final error', async () => {
      let calls = 0;
      t.app.get(OutboxService).register('test.final-but-forever', {
        retryForever: true,
        run: async () => {
          if (++calls < 3) throw finalError(Errors.awsLimitExceeded('limit'));
        },
      });
      await t.app.get(Transactions).run(() => t.app.get(OutboxService).enqueue({ kind: 'test.final-but-forever', payload: {} }));
      await eventually('the job is done', async () => (await countByStatus(t, 'done', 'test.final-but-forever')) === 1);
      assert.equal(calls, 3);
    });

    it('keeps retrying a retry-forever job past the attempt limit until it succeeds', async () => {
      let calls = 0;
      t.app.get(OutboxService).register('test.stubborn', {
        retryForever: true,
        run: async () => {
          if (++calls < 6) throw new Error(`not yet (${calls})`);
        },
      });
      await t.app.get(Transactions).run(() => t.app.get(OutboxService).enqueue({ kind: 'test.stubborn', payload: {} }));
      await eventually('the job is done', async () => (await countByStatus(t, 'done', 'test.stubborn')) === 1);
      assert.equal(calls, 6, 'past OUTBOX_MAX_ATTEMPTS (3), never dead');
      assert.equal(await countByStatus(t, 'dead', 'test.stubborn'), 0);
    });

    it('does not enqueue a job twice under one dedupe key while it is live', async () => {
      t.app.get(OutboxService).register('test.once', { run: async () => undefined });
      const outbox = t.app.get(OutboxService);
      const results = await t.app.get(Transactions).run(async () => [
        await outbox.enqueue({ kind: 'test.once', payload: {}, dedupeKey: 'once:1' }),
        await outbox.enqueue({ kind: 'test.once', payload: {}, dedupeKey: 'once:1' }),
      ]);
      assert.deepEqual(results, [true, false]);
    });

    it('takes over a job whose worker died holding it, once its lease expires', async () => {
      let ran = 0;
      t.app.get(OutboxService).register('test.orphan', { run: async () => void ran++ });
      // Enqueued and claimed by a "ghost" worker in one transaction, so no poller sees it free first.
      const repository = t.app.get(OutboxRepository);
      const claimed = await t.app.get(Transactions).run(async () => {
        await t.app.get(OutboxService).enqueue({ kind: 'test.orphan', payload: {}, dedupeKey: 'orphan' });
        const now = new Date();
        return repository.claim('ghost', now.toISOString(), new Date(now.getTime() + 300).toISOString(), 50);
      });
      const orphan = claimed.find((job) => job.kind === 'test.orphan');
      assert.ok(orphan, 'the ghost holds the job');
      await eventually('the orphan ran after its lease expired', async () => (await countByStatus(t, 'done', 'test.orphan')) === 1, 5000);
      assert.equal(ran, 1);
      assert.equal(await repository.finish(orphan.id, 'ghost', { status: 'done', now: new Date().toISOString() }), false, 'the ghost lost its lease');
    });
  });
}
