import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, DeleteCACertificateCommand, IoTClient } from '@aws-sdk/client-iot';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { buildCsr } from '../../tools/csr-builder';
import { IotStandIn } from '../../tools/standins';
import { eventually } from '../support/eventually';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

const FAST_OUTBOX = { OUTBOX_POLL_MS: '20', OUTBOX_BATCH_SIZE: '5', OUTBOX_BACKOFF_BASE_MS: '20', OUTBOX_BACKOFF_MAX_MS: '50', OUTBOX_MAX_ATTEMPTS: '2', IOT_MAX_ATTEMPTS: '1' };

/**
 * Recovery of AWS IoT work that went wrong (docs/operations.md, "Dead jobs"; docs/aws-behaviours.md): a deactivated CA
 * registered again, a registration AWS accepted but our database did not record adopted on retry, and a job
 * dead-lettered by an AWS outage retried by an operator once the outage is over. All of it audited.
 */
for (const { driver, skip } of drivers())
describe(`AWS IoT recovery on ${driver}`, { skip }, () => {
  let iot: IotStandIn;
  let t: TestApp;
  let rootId: string;
  let operatorKey: string;
  let auditorKey: string;

  before(async () => {
    iot = await new IotStandIn().start();
    await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(
      new CreatePolicyCommand({ policyName: 'fleet-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
    );
    t = await startTestApp(driver, { iot, env: FAST_OUTBOX });
    rootId = (await admin('POST', '/v1/authorities', { name: 'Recovery Root', type: 'root', subject: { commonName: 'Recovery Root CA' } })).id;
    operatorKey = (await admin('POST', '/v1/api-keys', { name: 'recovery operator', role: 'operator' })).key;
    auditorKey = (await admin('POST', '/v1/api-keys', { name: 'recovery auditor', role: 'auditor' })).key;
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
  });

  async function admin(method: 'POST' | 'GET' | 'DELETE', path: string, body?: object) {
    const req = method === 'POST' ? t.http().post(path) : method === 'GET' ? t.http().get(path) : t.http().delete(path);
    const res = await req.set(bearer(t.adminKey)).send(body);
    assert.ok([200, 201, 202].includes(res.status), `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  async function intermediate(name: string): Promise<{ id: string; fingerprint: string }> {
    return admin('POST', '/v1/authorities', { name, type: 'intermediate', parentId: rootId, subject: { commonName: name, organization: 'Acme' } });
  }

  function register(id: string, body: object = {}) {
    return t.http().post(`/v1/authorities/${id}/iot-registration`).set(bearer(t.adminKey)).send(body);
  }

  async function audit(action: string, targetId: string) {
    return (await t.http().get('/v1/audit').query({ action, targetId }).set(bearer(t.adminKey))).body.items as { actor: Record<string, unknown>; details: Record<string, unknown> }[];
  }

  const sql = (text: string, params: unknown[] = []) => t.app.get(TypeOrmTransactions).sql(text, params);

  for (const certificateMode of ['DEFAULT', 'SNI_ONLY'] as const) {
    it(`registers a deactivated ${certificateMode} CA again: AWS IoT's registration is set ACTIVE again, audited`, async () => {
      const ca = await intermediate(`Again ${certificateMode}`);
      const first = await register(ca.id, { certificateMode, deviceRegistration: 'jitr' });
      assert.equal(first.status, 201, first.text);
      assert.equal((await t.http().delete(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 200);
      assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'INACTIVE');
      const registerCalls = iot.calls.get('RegisterCACertificate') ?? 0;

      const again = await register(ca.id, { certificateMode, deviceRegistration: 'jitr' });
      assert.equal(again.status, 201, again.text);
      assert.equal(again.body.status, 'ACTIVE');
      assert.equal(again.body.autoRegistration, true);
      assert.equal(again.body.caCertificateId, ca.fingerprint);
      assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'ACTIVE', 'ACTIVE again in AWS IoT');
      assert.equal(iot.caCertificate(ca.fingerprint)?.autoRegistrationStatus, 'ENABLE');
      assert.equal((iot.calls.get('RegisterCACertificate') ?? 0) - registerCalls, 0, 'AWS still held it: described and updated, not registered');
      const events = await audit('authority.iot-registered', ca.id);
      assert.equal(events.length, 2);
      const reregistered = events.find((e) => e.details.reregistered === true);
      assert.ok(reregistered, JSON.stringify(events));
      assert.equal(reregistered.details.awsRegistration, 'reactivated');
      assert.deepEqual(reregistered.details.updated, ['status', 'autoRegistration']);
      assert.equal((await t.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).body.status, 'ACTIVE');

      const active = await register(ca.id, { certificateMode });
      assert.equal(active.status, 409, 'an ACTIVE registration is not registered twice');
      assert.equal(active.body.code, 'IOT_ALREADY_REGISTERED');
    });
  }

  it('registers a deactivated CA afresh (RegisterCACertificate, DEFAULT proof included) when AWS IoT no longer has it', async () => {
    const ca = await intermediate('Deleted in AWS');
    assert.equal((await register(ca.id, { certificateMode: 'DEFAULT' })).status, 201);
    assert.equal((await t.http().delete(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 200);
    await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(new DeleteCACertificateCommand({ certificateId: ca.fingerprint }));
    assert.equal(iot.caCertificate(ca.fingerprint), undefined);
    const registerCalls = iot.calls.get('RegisterCACertificate') ?? 0;
    const again = await register(ca.id, { certificateMode: 'DEFAULT', deviceRegistration: 'api', policyName: 'fleet-device' });
    assert.equal(again.status, 201, again.text);
    assert.equal(again.body.deviceRegistration, 'api', 'the new request\'s settings replace the old registration\'s');
    assert.equal(again.body.autoRegistration, false);
    assert.equal((iot.calls.get('RegisterCACertificate') ?? 0) - registerCalls, 1);
    assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'ACTIVE');
    const reregistered = (await audit('authority.iot-registered', ca.id)).find((e) => e.details.reregistered === true);
    assert.equal(reregistered?.details.awsRegistration, 'registered-again');
  });

  it('refuses to register a deactivated CA again in another mode (fixed in AWS IoT): 409, nothing changed', async () => {
    const ca = await intermediate('Again other mode');
    assert.equal((await register(ca.id, { certificateMode: 'SNI_ONLY' })).status, 201);
    assert.equal((await t.http().delete(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 200);
    const res = await register(ca.id, { certificateMode: 'DEFAULT' });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.code, 'IOT_CONFLICT');
    assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'INACTIVE');
    assert.equal((await t.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).body.status, 'INACTIVE');
  });

  it('adopts on retry a registration AWS IoT accepted but our database failed to record', async () => {
    const ca = await intermediate('DB failure CA');
    // The database refuses the registration row for real (a trigger), after AWS IoT has accepted the CA.
    if (driver === 'postgres') {
      await sql(`CREATE FUNCTION refuse_iot_registration() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql`);
      await sql('CREATE TRIGGER refuse_iot_registration BEFORE INSERT ON iot_ca_registrations FOR EACH ROW EXECUTE FUNCTION refuse_iot_registration()');
    } else {
      await sql(`CREATE TRIGGER refuse_iot_registration BEFORE INSERT ON iot_ca_registrations BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    }
    try {
      const failed = await register(ca.id, { certificateMode: 'DEFAULT' });
      assert.equal(failed.status, 500, failed.text);
    } finally {
      await sql('DROP TRIGGER refuse_iot_registration' + (driver === 'postgres' ? ' ON iot_ca_registrations' : ''));
      if (driver === 'postgres') await sql('DROP FUNCTION refuse_iot_registration()');
    }
    assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'ACTIVE', 'AWS IoT accepted it');
    assert.equal((await t.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 404, 'we did not record it');
    assert.deepEqual(await audit('authority.iot-registered', ca.id), []);

    const retry = await register(ca.id, { certificateMode: 'DEFAULT' });
    assert.equal(retry.status, 201, retry.text);
    assert.equal(retry.body.caCertificateId, ca.fingerprint);
    const adopted = await audit('iot.registration-adopted', ca.id);
    assert.deepEqual(adopted.map((e) => [e.details.awsOperation, e.details.caCertificateId]), [['RegisterCACertificate', ca.fingerprint]]);
    assert.equal((await audit('authority.iot-registered', ca.id))[0].details.adopted, true);
  });

  it('retries a job dead-lettered by an AWS IoT outage once it is over: it completes, the retry audited with its actor', async () => {
    const ca = await intermediate('Dead job CA');
    assert.equal((await register(ca.id, { certificateMode: 'SNI_ONLY', deviceRegistration: 'api', policyName: 'fleet-device' })).status, 201);
    iot.configure({ failureMode: 'http503' });
    let certificate: { id: string; fingerprint: string };
    try {
      certificate = await admin('POST', '/v1/certificates', { authorityId: ca.id, csr: buildCsr({ commonName: 'dead-job-device' }), profile: 'device', thingName: 'dead-job-device' });
      await eventually('the registration job is dead', async () => (await deadJobs()).some((j) => j.subject?.id === certificate.id));
    } finally {
      iot.configure({ failureMode: 'none' });
    }
    const job = (await deadJobs()).find((j) => j.subject?.id === certificate.id)!;
    assert.equal(job.kind, 'iot.register-certificate');
    assert.equal(job.status, 'dead');
    assert.equal(job.attempts, 2);
    assert.match(String(job.lastError), /IOT_UNAVAILABLE/);
    assert.deepEqual(job.subject, { type: 'certificate', id: certificate.id });
    // The job is marked dead first; its onDead handler records 'failed' just after.
    await eventually('the certificate says failed', async () => (await t.http().get(`/v1/certificates/${certificate.id}`).set(bearer(t.adminKey))).body.iot.status === 'failed');
    assert.match((await t.http().get('/metrics')).text, /fleetpki_outbox_dead_jobs\{kind="iot.register-certificate"\} [1-9]/);

    assert.equal((await t.http().post(`/v1/jobs/${job.id}/retry`).set(bearer(auditorKey))).status, 403, 'auditors may not retry');
    const retried = await t.http().post(`/v1/jobs/${job.id}/retry`).set(bearer(operatorKey));
    assert.equal(retried.status, 200, retried.text);
    assert.equal(retried.body.status, 'pending');
    await eventually('the certificate is ACTIVE in AWS IoT', () => iot.certificate(certificate.fingerprint)?.status === 'ACTIVE');
    await eventually('the job is done', async () => (await sql('SELECT status FROM outbox_jobs WHERE id = ?', [job.id]))[0]?.status === 'done');
    assert.equal((await t.http().get(`/v1/certificates/${certificate.id}`).set(bearer(t.adminKey))).body.iot.status, 'active');
    assert.ok(!(await deadJobs()).some((j) => j.id === job.id), 'no longer listed as dead');

    const events = await audit('outbox.job-retried', job.id);
    assert.equal(events.length, 1);
    assert.equal(events[0].actor.role, 'operator');
    assert.equal(events[0].details.kind, 'iot.register-certificate');
    const again = await t.http().post(`/v1/jobs/${job.id}/retry`).set(bearer(operatorKey));
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'JOB_NOT_DEAD');
    const unknown = await t.http().post('/v1/jobs/00000000-0000-4000-8000-000000000000/retry').set(bearer(operatorKey));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.code, 'JOB_NOT_FOUND');
  });

  async function deadJobs(): Promise<{ id: string; kind: string; status: string; attempts: number; lastError: string | null; subject: { type: string; id: string } | null }[]> {
    const items = [];
    let cursor: string | undefined;
    do {
      const res = await t.http().get('/v1/jobs').query({ state: 'dead', limit: 2, ...(cursor ? { cursor } : {}) }).set(bearer(auditorKey));
      assert.equal(res.status, 200, res.text);
      items.push(...res.body.items);
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    return items;
  }
});
