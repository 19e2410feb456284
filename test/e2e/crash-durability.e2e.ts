import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it, TestContext } from 'node:test';
import { CreatePolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { DatabaseConfig, IOT_DEFAULT_RATE_LIMITS } from '../../src/config/config';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { IotStandIn } from '../../tools/standins';
import { askOcsp, canonicalSerial, deadOutboxJobs, outboxJobs, readCrl, verifyAll } from '../support/crash/crash-checks';
import { Ledger, LoadTarget, loadAndKill, retryUnanswered, RoundCounts, stationOf } from '../support/crash/crash-load';
import { ServiceUnderTest } from '../support/crash/service-under-test';
import { eventually } from '../support/eventually';
import { OpenSslWorkspace } from '../support/openssl';

/**
 * kill -9 under mixed load (docs/crash-safety.md): the real service (`node dist/src/main.js`, its own process group) on
 * a fresh database, its device CA registered with the AWS IoT stand-in in API mode (so every certificate gets an outbox
 * job), takes issuance (API key), factory exchanges (stations with an x5c JWT signed by their claim key, on a large
 * claim and on a small one that runs out) and revocations from concurrent clients. A random 0.5-2 s into each round
 * the whole process group (a cluster primary and its workers alike) gets SIGKILL; the service restarts on the same
 * data, the requests the kill left unanswered are sent again, and the next round begins. After the last restart:
 * - every acknowledged certificate (201, or 200 for a replayed exchange) is stored as acknowledged and verifies with
 *   `openssl verify` against its chain; no two certificates share a serial; one certificate.issued audit event each;
 * - each claim's `used` is the number of distinct device serials acknowledged on it (never above maxDevices), and
 *   equals the number of certificates it provisioned; a replayed exchange answers 200 with the same certificate;
 * - every acknowledged revocation is revoked with its reason, and the CRL (openssl crl, signature verified) and OCSP
 *   (openssl ocsp against the service, every certificate of the CA) say exactly what the database says;
 * - `GET /v1/audit/verify` ok; every outbox job done (none pending, running or dead), and AWS IoT (the stand-in) holds
 *   every certificate of the CA: ACTIVE when it is not revoked, REVOKED when it is.
 * Behaviour only: nothing here measures speed. Run alone with `npm run test:crash`; `npm test` runs it too (CI).
 */

/** Kills per case; CRASH_TEST_KILLS raises it for a longer run by hand (CI keeps the default, to stay short). */
const KILLS = Math.max(3, Number(process.env.CRASH_TEST_KILLS) || 3);
const CLIENTS = { issuers: 10, stations: 10, revokers: 6 };
/** The small claim runs out during the test: its quota must end exact, never exceeded. */
const SMALL_CLAIM_DEVICES = 40;
const PUBLIC_BASE_URL = 'https://pki.crash.test';
/** Short outbox timings: jobs run during the load (so kills land in them) and finish soon after the last restart. */
const OUTBOX = { OUTBOX_POLL_MS: '50', OUTBOX_BATCH_SIZE: '20', OUTBOX_LEASE_MS: '1000', OUTBOX_BACKOFF_BASE_MS: '50', OUTBOX_BACKOFF_MAX_MS: '500' };
/**
 * The stand-in does not throttle, so AWS's TPS (RegisterCertificate: 10/s) would only make the final drain depend on
 * how much a run issued: a fast machine issued ~1,000 certificates, more than 60 s of registrations at 10/s.
 */
const IOT_RATE_LIMITS = Object.keys(IOT_DEFAULT_RATE_LIMITS)
  .map((operation) => `${operation}=1000`)
  .join(',');
const POLICY = 'crash-device';

interface Setup {
  target: LoadTarget;
  rootPem: string;
  deviceCa: { id: string; certificatePem: string; chainPem: string };
}

async function setUp(service: ServiceUnderTest, ledger: Ledger): Promise<Setup> {
  const root = await service.ok('POST', '/v1/authorities', { name: 'Crash Root', type: 'root', subject: { commonName: 'Crash Root' } });
  const deviceCa = await service.ok('POST', '/v1/authorities', { name: 'Crash Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Crash Devices' } });
  const claimCa = await service.ok('POST', '/v1/authorities', { name: 'Crash Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Crash Claims' } });
  await service.ok('POST', `/v1/authorities/${deviceCa.id}/iot-registration`, { certificateMode: 'SNI_ONLY', deviceRegistration: 'api', policyName: POLICY });
  const stations = [];
  for (const maxDevices of [100_000, SMALL_CLAIM_DEVICES]) {
    const claim = await service.ok('POST', '/v1/claims', {
      name: `Crash claim ${maxDevices}`,
      factory: 'Crash factory',
      claimAuthorityId: claimCa.id,
      deviceAuthorityId: deviceCa.id,
      maxDevices,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(),
      thingNameTemplate: 'crash-{serial}',
      claimCertificate: { generateKey: true },
    });
    const certificate = claim.claimCertificate as { certificatePem: string; privateKeyPem: string };
    stations.push(stationOf({ id: claim.id as string, maxDevices, claimCertificate: certificate }, createPrivateKey(certificate.privateKeyPem)));
  }
  return {
    target: { service, ledger, deviceAuthorityId: deviceCa.id as string, stations, exchangeAudience: `${PUBLIC_BASE_URL}/v1/provisioning/exchange` },
    rootPem: root.certificatePem as string,
    deviceCa: { id: deviceCa.id as string, certificatePem: deviceCa.certificatePem as string, chainPem: deviceCa.chainPem as string },
  };
}

/** Runs a piece of work on up to `parallel` items at once. */
async function eachLimited<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

async function crashTest(t: TestContext, driver: 'sqlite' | 'postgres', kills: number, extraEnv: Record<string, string> = {}): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-crash-'));
  const iot = await new IotStandIn({ latencyMs: 5 }).start();
  const ssl = new OpenSslWorkspace();
  let db: TemporaryDatabase | undefined;
  let database: DatabaseConfig = { driver: 'sqlite', file: path.join(dataDir, 'fleet-pki.sqlite') };
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    PUBLIC_BASE_URL,
    AWS_REGION: iot.region,
    AWS_ENDPOINT_URL_IOT: iot.endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...OUTBOX,
    IOT_RATE_LIMITS,
    ...extraEnv,
  };
  if (driver === 'postgres') {
    db = await temporaryDatabase('postgres');
    database = db.config;
    if (database.driver !== 'postgres') throw new Error('expected a PostgreSQL database');
    env.DATABASE_URL = database.url;
    env.FLEET_PKI_MASTER_KEY = randomBytes(32).toString('hex');
  }
  await new IoTClient({ region: iot.region, endpoint: iot.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }).send(
    new CreatePolicyCommand({ policyName: POLICY, policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
  );
  const service = new ServiceUnderTest(env, generateApiKey().key);
  const ledger = new Ledger();
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
    const { target, rootPem, deviceCa } = await setUp(service, ledger);
    phase('setup');

    const perRound: RoundCounts[] = [];
    for (let round = 1; round <= kills; round++) {
      perRound.push(await loadAndKill(target, round, CLIENTS));
      phase(`load+kill ${round}`);
      const exit = await service.start();
      assert.equal(exit, undefined, `the service did not restart after kill -9 number ${round}:\n${service.log}`);
      phase('restart');
      await retryUnanswered(target, round);
      phase('retry');
    }
    const roundText = perRound.map((r, i) => `round ${i + 1}: ${r.issued} issued, ${r.exchanged} exchanged, ${r.revoked} revoked`).join('; ');
    t.diagnostic(`${driver}${extraEnv.WORKERS ? ` WORKERS=${extraEnv.WORKERS}` : ''}: ${service.processes().length} process(es); acknowledged before each kill -9: ${roundText}`);
    assert.deepEqual(ledger.refused, [], 'answers other than an acknowledgement, CLAIM_QUOTA_EXHAUSTED or load shedding');
    assert.ok(perRound.every((r) => r.issued + r.exchanged + r.revoked > 0), `every round must acknowledge requests before the kill: ${roundText}`);
    assert.ok(ledger.issuances > 0 && ledger.exchanges > 0 && ledger.revocations.size > 0, `each kind of request acknowledged: ${roundText}`);

    // 1. Every acknowledged certificate is stored as acknowledged (same serial, same DER), and openssl verifies it.
    const lost: string[] = [];
    const stored = new Map<string, string>();
    await eachLimited([...ledger.certificates.values()], 16, async (ack) => {
      const res = await service.request('GET', `/v1/certificates/${ack.id}`);
      if (res.status !== 200 || res.body.serial !== ack.serial || res.body.certificatePem !== ack.certificatePem) {
        lost.push(`${ack.how} in round ${ack.round}: ${ack.id} (${ack.serial}): ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      } else stored.set(`${ack.id} (${ack.serial})`, res.body.certificatePem as string);
    });
    assert.deepEqual(lost, [], `${lost.length} of ${ledger.certificates.size} acknowledged certificates lost or changed after kill -9`);
    assert.deepEqual(await verifyAll(ssl, rootPem, deviceCa.certificatePem, stored), [], 'acknowledged certificates openssl does not verify against their chain');
    phase('stored+verified');

    // 2. No two certificates share a serial (nor an id); one certificate.issued audit event per certificate.
    const certificates = await service.all('/v1/certificates');
    const serials = certificates.map((c) => c.serial as string);
    assert.equal(new Set(serials).size, serials.length, 'duplicate serials');
    assert.equal(new Set(certificates.map((c) => c.id)).size, certificates.length, 'duplicate ids');
    const listed = new Set(serials);
    assert.deepEqual([...ledger.certificates.values()].filter((a) => !listed.has(a.serial)), [], 'acknowledged certificates missing from the list');
    const issued = (await service.all('/v1/audit?action=certificate.issued')).map((e) => (e.details as { serial?: string } | undefined)?.serial);
    assert.deepEqual([...issued].sort(), [...serials].sort(), 'certificate.issued events and certificates differ (one event per certificate)');

    // 3. Quotas: each acknowledged device serial took exactly one slot, and a claim never provisions past its maxDevices.
    const quotas: string[] = [];
    for (const station of target.stations) {
      const claim = await service.ok('GET', `/v1/claims/${station.claimId}`);
      const acknowledged = ledger.exchangedSerials.get(station.claimId)?.size ?? 0;
      const provisioned = certificates.filter((c) => c.claimId === station.claimId && c.profile !== 'claim').length;
      quotas.push(`${claim.used}/${station.maxDevices}`);
      assert.equal(claim.used, acknowledged, `claim ${station.claimId}: used ${String(claim.used)}, ${acknowledged} distinct device serials acknowledged`);
      assert.equal(provisioned, acknowledged, `claim ${station.claimId}: ${provisioned} certificates provisioned, ${acknowledged} acknowledged`);
      assert.ok((claim.used as number) <= station.maxDevices, `claim ${station.claimId}: used ${String(claim.used)} > maxDevices ${station.maxDevices}`);
    }

    // 4. No revocation lost: the database, the CRL and OCSP agree, and every acknowledged revocation is among them.
    const ofCa = certificates.filter((c) => c.authorityId === deviceCa.id);
    const revokedInDb = new Map(ofCa.filter((c) => c.status === 'revoked').map((c) => [canonicalSerial(c.serial as string), c.revocationReason as string]));
    const notRevoked = [...ledger.revocations.entries()].filter(([id, reason]) => {
      const row = certificates.find((c) => c.id === id);
      return row?.status !== 'revoked' || row.revocationReason !== reason;
    });
    assert.deepEqual(notRevoked, [], 'acknowledged revocations not revoked (with their reason) after kill -9');
    const crl = await fetch(`${service.baseUrl}/v1/authorities/${deviceCa.id}/crl`);
    assert.equal(crl.status, 200);
    const chainPem = `${deviceCa.certificatePem}${rootPem}`;
    const read = await readCrl(ssl, Buffer.from(await crl.arrayBuffer()), chainPem);
    assert.ok(read.verified, `openssl crl did not verify the CRL: ${read.output}`);
    assert.deepEqual([...read.entries.keys()].sort(), [...revokedInDb.keys()].sort(), 'the CRL entries are not the revoked certificates of the database');
    const ocsp = await askOcsp(ssl, `${service.baseUrl}/ocsp`, deviceCa.certificatePem, chainPem, ofCa.map((c) => c.serial as string));
    assert.deepEqual(ocsp.failures, []);
    const disagreements = ofCa.flatMap((c) => {
      const serial = canonicalSerial(c.serial as string);
      const answer = ocsp.statuses.get(serial);
      const expected = c.status === 'revoked' ? { status: 'revoked', reason: c.revocationReason as string } : { status: 'good', reason: undefined };
      return answer?.status === expected.status && answer.reason === expected.reason ? [] : [`${serial}: database ${JSON.stringify(expected)}, OCSP ${JSON.stringify(answer)}`];
    });
    assert.deepEqual(disagreements, [], 'OCSP and the database disagree');
    phase('quota+crl+ocsp');

    // 5. The audit chain survived every kill.
    const verify = await service.ok('GET', '/v1/audit/verify');
    assert.equal(verify.ok, true, `audit chain broken after kill -9: ${JSON.stringify(verify)}`);

    // 6. Every outbox job finishes, and AWS IoT ends as our records say.
    let jobs: Awaited<ReturnType<typeof outboxJobs>> = [];
    await eventually(
      'no outbox job is pending or running',
      async () => {
        jobs = await outboxJobs(database);
        return jobs.every((j) => j.status === 'done' || j.status === 'dead');
      },
      60_000,
      250,
    ).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(jobs)}`));
    if (jobs.some((j) => j.status === 'dead')) assert.fail(`dead-lettered outbox jobs: ${JSON.stringify(await deadOutboxJobs(database))}`);
    const final = await service.all(`/v1/certificates?authorityId=${deviceCa.id}`);
    const iotMismatches = final.flatMap((c) => {
      const revoked = c.status === 'revoked';
      const inIot = iot.certificate(c.fingerprint as string)?.status;
      const ours = (c.iot as { status: string }).status;
      return inIot === (revoked ? 'REVOKED' : 'ACTIVE') && ours === (revoked ? 'revoked' : 'active') ? [] : [`${c.id} ${c.status as string}: iot.status ${ours}, AWS IoT ${inIot}`];
    });
    assert.deepEqual(iotMismatches, [], 'AWS IoT and our records disagree after every job finished');
    phase('audit+outbox');

    const jobCounts = jobs.map((j) => `${j.kind} ${j.n}`).join(', ');
    t.diagnostic(
      `${driver}: acknowledged ${ledger.issuances} issuances, ${ledger.exchanges} exchanges (claims used ${quotas.join(', ')}), ${ledger.revocations.size} revocations; ` +
        `${kills} kills; after restarts ${ledger.retriedExchanges.replayed} exchanges replayed (200) and ${ledger.retriedExchanges.issued} issued (201), ` +
        `${ledger.retriedRevocations.alreadyRevoked} revocations found done and ${ledger.retriedRevocations.revoked} made; ` +
        `${ofCa.length} device certificates (${revokedInDb.size} revoked) checked against CRL and OCSP; outbox jobs done: ${jobCounts}`,
    );
    t.diagnostic(phases.join(', '));
  } catch (err) {
    t.diagnostic(`service output (last lines):\n${service.log.split('\n').slice(-30).join('\n')}`);
    throw err;
  } finally {
    await service.kill9();
    await iot.stop();
    await db?.drop();
    ssl.cleanup();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL crash test skipped: ${PG_ENV} is not set`;

// PostgreSQL: once as one process (WORKERS=1, also where the service's default would be a cluster) and once as a
// cluster of two workers (fewer kills: a cluster takes longest to restart, and the test must stay short).
describe('kill -9 during issuance, exchange and revocation load', () => {
  const checks = 'nothing acknowledged lost, no duplicate serial, quotas exact, CRL and OCSP agree, audit verifies, every outbox job done';
  it(`sqlite: ${KILLS} kills; ${checks}`, (t) => crashTest(t, 'sqlite', KILLS));
  it(`postgres, one process: ${KILLS} kills; same checks`, { skip: pgSkip }, (t) => crashTest(t, 'postgres', KILLS, { WORKERS: '1' }));
  it(`postgres with WORKERS=2 (skipped when the service does not support WORKERS): ${KILLS - 1} kills; same checks`, { skip: pgSkip }, (t) => crashTest(t, 'postgres', KILLS - 1, { WORKERS: '2' }));
});
