import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AttachPolicyCommand, CreatePolicyCommand, IoTClient, RegisterCertificateCommand } from '@aws-sdk/client-iot';
import { DataSource } from 'typeorm';
import { IotStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';
import { eventually } from '../support/eventually';

const SECRET = 'iot-events-secret-for-tests-0123456789abcdef';
const POLICY = 'fleet-device';


/**
 * Devices and AWS IoT (the stand-in through the real SDK): JITR events handled, API-mode registration
 * through the outbox (also across an outage), and revocation pushed — with the end state checked in the stand-in.
 */
const DESTINATION_ARN = 'arn:aws:iot:us-east-1:111122223333:ruledestination/http/abc';

for (const { driver, skip } of drivers())
describe(`AWS IoT device lifecycle on ${driver}`, { skip }, () => {
  let iot: IotStandIn;
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  let jitrCa: { id: string; fingerprint: string; chainPem: string };
  let apiCa: { id: string; fingerprint: string; chainPem: string };

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp(driver, {
      iot,
      env: {
        IOT_EVENTS_SECRET: SECRET,
        IOT_EVENTS_DESTINATION_ARN: DESTINATION_ARN,
        IOT_MAX_ATTEMPTS: '1',
        OUTBOX_POLL_MS: '25',
        OUTBOX_BACKOFF_BASE_MS: '40',
        OUTBOX_BACKOFF_MAX_MS: '300',
        OUTBOX_MAX_ATTEMPTS: '60',
      },
    });
    await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(
      new CreatePolicyCommand({ policyName: POLICY, policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
    );
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Devices Root', type: 'root', subject: { commonName: 'Devices Root' } });
    const makeCa = async (name: string, deviceRegistration: string) => {
      const ca = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name, type: 'intermediate', parentId: root.body.id, subject: { commonName: name } });
      const reg = await t.http().post(`/v1/authorities/${ca.body.id}/iot-registration`).set(bearer(t.adminKey)).send({ deviceRegistration, policyName: POLICY });
      assert.equal(reg.status, 201, JSON.stringify(reg.body));
      return ca.body;
    };
    jitrCa = await makeCa('JITR CA', 'jitr');
    apiCa = await makeCa('API CA', 'api');
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    ssl.cleanup();
  });

  function issue(authorityId: string, thingName: string) {
    return t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId, csr: ssl.newCsr('ec:P-256', `/CN=${thingName}`).csrPem, profile: 'device', thingName });
  }

  function postEvent(body: unknown, secret = SECRET) {
    return t.http().post('/v1/iot/events').set('X-Fleet-Pki-Events-Secret', secret).send(body as object);
  }

  async function iotStatus(id: string): Promise<string> {
    return (await t.http().get(`/v1/certificates/${id}`).set(bearer(t.adminKey))).body.iot.status;
  }

  /** The device's first connection: the stand-in registers it PENDING_ACTIVATION and returns the JITR event. */
  function connect(certificatePem: string, chainPem: string) {
    const result = iot.connectDevice(certificatePem, chainPem);
    assert.equal(result.connected, false);
    assert.ok('event' in result && result.event, `a registration event: ${JSON.stringify(result)}`);
    return result.event;
  }

  function assertFullyRegistered(fingerprint: string, thingName: string): void {
    const certificate = iot.certificate(fingerprint);
    assert.equal(certificate?.status, 'ACTIVE');
    assert.ok(iot.thing(thingName), 'thing created');
    assert.deepEqual(iot.principalsOf(thingName), [certificate!.certificateArn], 'thing ↔ certificate attached');
    assert.deepEqual(iot.policiesAttachedTo(certificate!.certificateArn), [POLICY], 'policy attached');
  }

  it('activates one of our certificates after its JITR event: thing, policy, principal, ACTIVE; a replay changes nothing', async () => {
    const cert = (await issue(jitrCa.id, 'jitr-sensor-1')).body;
    assert.equal(cert.iot.status, 'none', 'JITR: nothing to do until the device connects');
    const event = connect(cert.certificatePem, cert.chainPem);
    assert.equal(event.certificateId, cert.fingerprint);
    const res = await postEvent(event);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { decision: 'activate', certificateId: cert.id });
    await eventually('the certificate is active in AWS IoT', async () => (await iotStatus(cert.id)) === 'active');
    assertFullyRegistered(cert.fingerprint, 'jitr-sensor-1');
    assert.deepEqual(iot.connectDevice(cert.certificatePem, cert.chainPem), { connected: true });

    const callsBefore = JSON.stringify([...iot.calls.entries()]);
    const replay = await postEvent(event);
    assert.deepEqual(replay.body, { decision: 'duplicate', certificateId: cert.id });
    const concurrent = await Promise.all([postEvent(event), postEvent(event)]);
    assert.deepEqual(concurrent.map((r) => r.status), [200, 200], 'the same event twice at once: no 500');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(JSON.stringify([...iot.calls.entries()]), callsBefore, 'a replayed event makes no AWS call');
    assertFullyRegistered(cert.fingerprint, 'jitr-sensor-1');

    const audit = await t.http().get('/v1/audit').query({ action: 'iot.jitr-event', targetId: cert.id }).set(bearer(t.adminKey));
    assert.deepEqual(audit.body.items.map((e: { details: { decision: string } }) => e.details.decision), ['activate', 'duplicate', 'duplicate', 'duplicate']);
  });

  it('registers a certificate revoked before its first connection as REVOKED, so the device is refused', async () => {
    const cert = (await issue(jitrCa.id, 'jitr-revoked')).body;
    assert.equal((await t.http().post(`/v1/certificates/${cert.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
    await eventually('AWS IoT holds it REVOKED', () => iot.certificate(cert.fingerprint)?.status === 'REVOKED');
    await eventually('our record says so', async () => (await iotStatus(cert.id)) === 'revoked');
    const attempt = iot.connectDevice(cert.certificatePem, cert.chainPem);
    assert.equal(attempt.connected, false);
    assert.ok(!('event' in attempt) || !attempt.event, 'no JITR registration for a revoked certificate');
    assert.equal(iot.thing('jitr-revoked'), undefined, 'no thing for a revoked certificate');
  });

  it('leaves REVOKED a certificate revoked after AWS registered it by JITR, whatever order the event and the revocation arrive in', async () => {
    const cert = (await issue(jitrCa.id, 'jitr-late-revoke')).body;
    const event = connect(cert.certificatePem, cert.chainPem);
    assert.equal((await t.http().post(`/v1/certificates/${cert.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'superseded' })).status, 200);
    const res = await postEvent(event);
    assert.ok(['reject', 'duplicate'].includes(res.body.decision), JSON.stringify(res.body));
    await eventually('AWS IoT shows it REVOKED', () => iot.certificate(cert.fingerprint)?.status === 'REVOKED');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(iot.certificate(cert.fingerprint)?.status, 'REVOKED');
    assert.equal(iot.thing('jitr-late-revoke'), undefined);
  });

  it('ignores events about CAs that are not ours', async () => {
    const callsBefore = JSON.stringify([...iot.calls.entries()]);
    const res = await postEvent({ certificateId: 'c'.repeat(64), caCertificateId: 'd'.repeat(64), certificateStatus: 'PENDING_ACTIVATION' });
    assert.deepEqual(res.body, { decision: 'not-our-ca', certificateId: null });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(JSON.stringify([...iot.calls.entries()]), callsBefore);
  });

  it('revokes in AWS IoT a certificate under our CA that we have no record of', async () => {
    const cert = (await issue(jitrCa.id, 'jitr-unknown')).body;
    await t.app.get(DataSource).query(`DELETE FROM certificates WHERE id = ${driver === 'postgres' ? '$1' : '?'}`, [cert.id]);
    const res = await postEvent(connect(cert.certificatePem, cert.chainPem));
    assert.deepEqual(res.body, { decision: 'reject', certificateId: null });
    await eventually('AWS IoT shows it REVOKED', () => iot.certificate(cert.fingerprint)?.status === 'REVOKED');
  });

  it('refuses events without the shared secret (401), and writes no audit event for them', async () => {
    const before = (await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body.checked;
    for (const secret of ['wrong-secret', '']) {
      const res = await postEvent({ certificateId: 'a'.repeat(64), caCertificateId: 'b'.repeat(64), certificateStatus: 'PENDING_ACTIVATION' }, secret);
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'UNAUTHENTICATED');
    }
    assert.equal((await t.http().post('/v1/iot/events').send({})).status, 401);
    assert.equal((await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body.checked, before);
  });

  it('confirms the topic rule destination as AWS sends it (no secret header, the rule does not exist yet; URL with a trailing slash), then enables it', async () => {
    // The destination as CreateTopicRuleDestination leaves it: IN_PROGRESS until confirmed.
    iot.seedTopicRuleDestination({ arn: DESTINATION_ARN, confirmationToken: 'token/with+odd=chars', confirmationUrl: `${t.config.publicBaseUrl}/v1/iot/events` });
    const res = await t
      .http()
      .post('/v1/iot/events/')
      .query({ confirmationToken: 'token/with+odd=chars' })
      .set('x-amz-rules-engine-message-type', 'DestinationConfirmation')
      .set('x-amz-rules-engine-destination-arn', DESTINATION_ARN)
      .send({ arn: DESTINATION_ARN, confirmationToken: 'token/with+odd=chars', enableUrl: 'https://example.invalid', messageType: 'DestinationConfirmation' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { decision: 'confirm-destination', certificateId: null });
    assert.ok(iot.confirmedTokens().includes('token/with+odd=chars'));
    // Confirmed is DISABLED in AWS: no rule delivers to it until UpdateTopicRuleDestination sets it ENABLED.
    await eventually('the destination is ENABLED in AWS IoT', () => iot.topicRuleDestination(DESTINATION_ARN)?.status === 'ENABLED');
    // The stand-in says ENABLED as soon as AWS would; the outbox job's audit event commits just after.
    const enabledEvents = () => t.http().get('/v1/audit').query({ action: 'iot.topic-rule-destination-enabled' }).set(bearer(t.adminKey));
    await eventually('the enabling is audited', async () => (await enabledEvents()).body.items.length > 0);
    const audit = await enabledEvents();
    assert.deepEqual(audit.body.items.map((e: { details: unknown }) => e.details), [{ destinationArn: DESTINATION_ARN, previousStatus: 'DISABLED' }]);
  });

  it('does not act on an unauthenticated confirmation for another destination, and stores nothing for it', async () => {
    const before = await t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM outbox_jobs');
    const res = await t.http().post('/v1/iot/events').set('x-amz-rules-engine-message-type', 'DestinationConfirmation').send({
      arn: 'arn:aws:iot:us-east-1:111122223333:ruledestination/http/other',
      confirmationToken: 'attacker-token',
      messageType: 'DestinationConfirmation',
    });
    assert.deepEqual(res.body, { decision: 'confirmation-ignored', certificateId: null });
    assert.ok(!iot.confirmedTokens().includes('attacker-token'));
    const after = await t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM outbox_jobs');
    assert.equal(Number(after[0].n), Number(before[0].n));
  });

  it('never treats a JITR event without the secret as a confirmation', async () => {
    const res = await t.http().post('/v1/iot/events').set('x-amz-rules-engine-message-type', 'DestinationConfirmation').send({ certificateId: 'a'.repeat(64), caCertificateId: 'b'.repeat(64), certificateStatus: 'PENDING_ACTIVATION' });
    assert.equal(res.status, 400, 'a confirmation needs its token and does nothing else');
  });

  it('API mode: answers at once with status pending, then registers, attaches and activates through the outbox', async () => {
    const res = await issue(apiCa.id, 'api-sensor-1');
    assert.equal(res.status, 201);
    assert.equal(res.body.iot.status, 'pending');
    await eventually('registered and active', async () => (await iotStatus(res.body.id)) === 'active');
    assertFullyRegistered(res.body.fingerprint, 'api-sensor-1');
    assert.equal(iot.caCertificate(apiCa.fingerprint)?.autoRegistrationStatus, 'DISABLE', 'API mode registers the CA without auto-registration');
    assert.equal(iot.certificate(res.body.fingerprint)?.caCertificateId, apiCa.fingerprint);
  });

  it('API mode: keeps certificates issued during an AWS IoT outage, backs off, and completes each exactly once after recovery', async () => {
    iot.configure({ failureMode: 'http503' });
    const issued: { id: string; fingerprint: string; thingName: string }[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const res = await issue(apiCa.id, `outage-sensor-${i}`);
        assert.equal(res.status, 201, 'issuance never waits on AWS');
        assert.equal(res.body.iot.status, 'pending');
        issued.push({ id: res.body.id, fingerprint: res.body.fingerprint, thingName: `outage-sensor-${i}` });
      }
      let job = { attempts: 0, last_error: null as string | null };
      await eventually('the first registration retried', async () => (job = await registerJob(issued[0].id)).attempts >= 2 && job.last_error !== null);
      assert.match(String(job.last_error), /IOT_UNAVAILABLE/);
      for (const cert of issued) assert.equal(await iotStatus(cert.id), 'pending');
      // One registration "succeeded" in AWS but its answer was lost: the retry meets ResourceAlreadyExists. The
      // certificate is read while AWS is still down, so only one call separates recovery from that registration; on a
      // loaded machine the outbox's own retry may still come first, which is the ordinary path and is tolerated.
      const first = await t.http().get(`/v1/certificates/${issued[0].id}`).set(bearer(t.adminKey));
      iot.configure({ failureMode: 'none' });
      await new IoTClient({ region: iot.region, endpoint: iot.endpoint })
        .send(new RegisterCertificateCommand({ certificatePem: first.body.certificatePem, caCertificatePem: first.body.chainPem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n', status: 'INACTIVE' }))
        .catch((err: Error) => assert.equal(err.name, 'ResourceAlreadyExistsException', err.message));
    } finally {
      iot.configure({ failureMode: 'none' });
    }
    for (const cert of issued) {
      await eventually(`${cert.thingName} active`, async () => (await iotStatus(cert.id)) === 'active');
      assertFullyRegistered(cert.fingerprint, cert.thingName);
    }
    assert.equal(iot.certificateList().filter((c) => issued.some((i) => i.fingerprint === c.certificateId)).length, issued.length, 'each registered once');
  });

  it('API mode: a certificate revoked while its registration is under way ends REVOKED, never ACTIVE', async () => {
    iot.configure({ latencyMs: 100 });
    try {
      const res = await issue(apiCa.id, 'api-race');
      assert.equal((await t.http().post(`/v1/certificates/${res.body.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      await eventually('REVOKED in AWS IoT', () => iot.certificate(res.body.fingerprint)?.status === 'REVOKED');
      await eventually('our record says so', async () => (await iotStatus(res.body.id)) === 'revoked');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(iot.certificate(res.body.fingerprint)?.status, 'REVOKED');
    } finally {
      iot.configure({ latencyMs: 0 });
    }
  });

  /**
   * The registration job has read the certificate (active) and its RegisterCertificate is on the wire (held 1.5 s by
   * the stand-in) when AWS IoT comes to hold the certificate REVOKED under our CA: in the race this plays, the
   * revocation's own job got there first (it registers a certificate AWS has not seen as REVOKED).
   */
  async function revokedInAwsMidRegistration(thingName: string, revokeOurs: boolean) {
    iot.configure({ latencyMs: 1500 });
    try {
      const registrationsBefore = iot.calls.get('RegisterCertificate') ?? 0;
      const res = await issue(apiCa.id, thingName);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await eventually('the registration reached AWS IoT', () => (iot.calls.get('RegisterCertificate') ?? 0) > registrationsBefore, 15_000, 5);
      if (revokeOurs) assert.equal((await t.http().post(`/v1/certificates/${res.body.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      await iot.registerForeignCertificate(apiCa.fingerprint, { certificatePem: res.body.certificatePem, status: 'REVOKED' });
      assert.equal((await registerJob(res.body.id)).status, 'running', 'the registration was still in flight when AWS came to hold it REVOKED');
      return res.body as { id: string; fingerprint: string };
    } finally {
      iot.configure({ latencyMs: 0 }); // the call already on the wire keeps its 1.5 s
    }
  }

  it('API mode: a revocation that reaches AWS IoT before the registration in flight ends that job done, REVOKED, not dead-lettered', async () => {
    const cert = await revokedInAwsMidRegistration('api-revoked-first', true);
    await eventually('the registration job finished', async () => ['done', 'dead'].includes((await registerJob(cert.id)).status));
    const job = await registerJob(cert.id);
    assert.deepEqual([job.status, job.last_error], ['done', null]);
    assert.equal(job.attempts, 1, 'settled on its first attempt: nothing to retry');
    await eventually('our record says revoked', async () => (await iotStatus(cert.id)) === 'revoked');
    assert.equal(iot.certificate(cert.fingerprint)?.status, 'REVOKED');
    assert.deepEqual(iot.policiesAttachedTo(iot.certificate(cert.fingerprint)!.certificateArn), [], 'nothing attached to a revoked certificate');
  });

  it('API mode: a certificate of ours still active that AWS IoT holds REVOKED is dead-lettered at once, naming why', async () => {
    const cert = await revokedInAwsMidRegistration('api-revoked-in-aws-only', false);
    await eventually('the registration is given up', async () => (await registerJob(cert.id)).status === 'dead');
    const job = await registerJob(cert.id);
    assert.equal(job.attempts, 1, 'no retry: REVOKED is final in AWS IoT');
    assert.equal(job.last_error, `IOT_CONFLICT: AWS IoT already holds certificate ${cert.fingerprint} as REVOKED, and a revoked certificate cannot be activated there`);
    // The job is marked dead first; its onDead handler records 'failed' just after.
    await eventually('our record says failed', async () => (await iotStatus(cert.id)) === 'failed');
    assert.equal(iot.certificate(cert.fingerprint)?.status, 'REVOKED');
  });

  it('pushes a revocation to AWS IoT (REVOKED) through the outbox', async () => {
    const res = await issue(apiCa.id, 'api-revoked');
    await eventually('active', async () => (await iotStatus(res.body.id)) === 'active');
    assert.equal((await t.http().post(`/v1/certificates/${res.body.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
    await eventually('REVOKED in AWS IoT', () => iot.certificate(res.body.fingerprint)?.status === 'REVOKED');
    await eventually('our record says so', async () => (await iotStatus(res.body.id)) === 'revoked');
  });

  async function registerJob(certificateId: string): Promise<{ status: string; attempts: number; last_error: string | null }> {
    const [row] = await t.app.get(DataSource).query(`SELECT status, attempts, last_error FROM outbox_jobs WHERE target_id = ${driver === 'postgres' ? '$1' : '?'} AND kind = 'iot.register-certificate'`, [certificateId]);
    return { ...row, attempts: Number(row.attempts) };
  }

  async function adoptions(certificateId: string) {
    return (await t.http().get('/v1/audit').query({ action: 'iot.registration-adopted', targetId: certificateId }).set(bearer(t.adminKey))).body.items as { details: Record<string, unknown> }[];
  }

  for (const lostResponseAs of ['reset', 'http500'] as const) {
    it(`API mode: adopts a RegisterCertificate whose answer was lost (${lostResponseAs}) and ends as the no-failure path does, audited`, async () => {
      const reference = await issue(apiCa.id, `api-reference-${lostResponseAs}`);
      await eventually('reference active', async () => (await iotStatus(reference.body.id)) === 'active');
      const lostBefore = iot.lostResponses.get('RegisterCertificate') ?? 0;
      iot.configure({ loseResponses: { RegisterCertificate: 1 }, lostResponseAs });
      try {
        const res = await issue(apiCa.id, `api-lost-${lostResponseAs}`);
        assert.equal(res.status, 201);
        await eventually('registered and active', async () => (await iotStatus(res.body.id)) === 'active');
        assert.equal((iot.lostResponses.get('RegisterCertificate') ?? 0) - lostBefore, 1, 'AWS registered it and the answer was lost');
        assertFullyRegistered(res.body.fingerprint, `api-lost-${lostResponseAs}`);
        // AWS shows ACTIVE a moment before the job's own row commits as done.
        await eventually('the registration job is done', async () => (await registerJob(res.body.id)).status === 'done');
        const job = await registerJob(res.body.id);
        assert.equal(job.status, 'done');
        assert.equal(job.attempts, 2, 'the first attempt lost its answer, the second adopted');
        const adopted = await adoptions(res.body.id);
        assert.equal(adopted.length, 1);
        assert.deepEqual(
          [adopted[0].details.awsOperation, adopted[0].details.certificateId, adopted[0].details.awsStatus, adopted[0].details.caCertificateId],
          ['RegisterCertificate', res.body.fingerprint, 'INACTIVE', apiCa.fingerprint],
        );
        // The same end state as the certificate whose registration never failed.
        const state = (fingerprint: string) => {
          const c = iot.certificate(fingerprint)!;
          return { status: c.status, caCertificateId: c.caCertificateId, registeredBy: c.registeredBy, policies: iot.policiesAttachedTo(c.certificateArn), things: iot.thingsOf(c.certificateArn).length };
        };
        assert.deepEqual(state(res.body.fingerprint), state(reference.body.fingerprint));
        const body = (await t.http().get(`/v1/certificates/${res.body.id}`).set(bearer(t.adminKey))).body;
        const refBody = (await t.http().get(`/v1/certificates/${reference.body.id}`).set(bearer(t.adminKey))).body;
        const progress = (iot: Record<string, unknown>) => ({ status: iot.status, lastError: iot.lastError });
        assert.deepEqual(progress(body.iot), progress(refBody.iot));
        assert.deepEqual(await adoptions(reference.body.id), [], 'no adoption on the no-failure path');
      } finally {
        iot.configure({ loseResponses: {}, lostResponseAs: 'reset' });
      }
    });
  }

  for (const where of ['without a CA', 'under another CA'] as const) {
    it(`API mode: does not adopt our certificate when AWS IoT already holds it ${where} (issue 25)`, async () => {
      const thingName = `api-held-${where === 'without a CA' ? 'no-ca' : 'other-ca'}`;
      let res: Awaited<ReturnType<typeof issue>>;
      iot.configure({ failureMode: 'http503' });
      try {
        res = await issue(apiCa.id, thingName);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        await eventually('a first attempt failed', async () => (await registerJob(res.body.id)).attempts >= 1);
        // Meanwhile someone registered the same certificate in AWS IoT, not under our CA registration.
        await iot.registerForeignCertificate(where === 'without a CA' ? apiCa.fingerprint : jitrCa.fingerprint, {
          certificatePem: res.body.certificatePem,
          status: 'INACTIVE',
          withoutCa: where === 'without a CA',
          anyIssuer: true,
        });
      } finally {
        iot.configure({ failureMode: 'none' });
      }
      assert.equal(iot.certificate(res.body.fingerprint)?.caCertificateId, where === 'without a CA' ? undefined : jitrCa.fingerprint);
      await eventually('the registration is given up', async () => (await registerJob(res.body.id)).status === 'dead');
      const job = await registerJob(res.body.id);
      const held = where === 'without a CA' ? 'registered without a CA' : `under CA ${jitrCa.fingerprint}`;
      assert.equal(job.last_error, `IOT_CONFLICT: AWS IoT already holds certificate ${res.body.fingerprint} ${held}, not under our CA ${apiCa.fingerprint}; it was not adopted (docs/aws-behaviours.md)`);
      assert.deepEqual(await adoptions(res.body.id), [], 'not adopted');
      const inAws = iot.certificate(res.body.fingerprint)!;
      assert.equal(inAws.status, 'INACTIVE', 'never activated');
      assert.deepEqual(iot.policiesAttachedTo(inAws.certificateArn), []);
      assert.deepEqual(iot.thingsOf(inAws.certificateArn), []);
      assert.notEqual(await iotStatus(res.body.id), 'active');
    });
  }

  it('does not audit an adoption when a later step failed and the job runs RegisterCertificate again after a known answer', async () => {
    // AttachThingPrincipal fails once: the job runs again from the top and meets ResourceAlreadyExists for a
    // registration whose answer it did get.
    iot.configure({ loseResponses: { AttachThingPrincipal: 1 }, lostResponseAs: 'http500' });
    try {
      const res = await issue(apiCa.id, 'api-known-answer');
      await eventually('active', async () => (await iotStatus(res.body.id)) === 'active');
      assert.ok((await registerJob(res.body.id)).attempts >= 2);
      assert.deepEqual(await adoptions(res.body.id), []);
    } finally {
      iot.configure({ loseResponses: {}, lostResponseAs: 'reset' });
    }
  });

  it('dead-letters at once an activation that meets an AWS IoT hard limit (10 policies per certificate), naming it', async () => {
    const client = new IoTClient({ region: iot.region, endpoint: iot.endpoint });
    const cert = (await issue(jitrCa.id, 'jitr-limit')).body;
    const event = connect(cert.certificatePem, cert.chainPem);
    // Someone attached ten other policies to the certificate while it waited for activation.
    const arn = iot.certificate(cert.fingerprint)!.certificateArn;
    for (let i = 0; i < 10; i++) {
      const policyName = `other-${driver}-${i}`;
      await client.send(new CreatePolicyCommand({ policyName, policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }));
      await client.send(new AttachPolicyCommand({ policyName, target: arn }));
    }
    const attachBefore = iot.calls.get('AttachPolicy') ?? 0;
    assert.equal((await postEvent(event)).body.decision, 'activate');
    await eventually('the activation is dead', async () => {
      const [row] = await t.app.get(DataSource).query(`SELECT status FROM outbox_jobs WHERE target_id = ${driver === 'postgres' ? '$1' : '?'} AND kind = 'iot.activate-certificate'`, [cert.id]);
      return row?.status === 'dead';
    });
    const [job] = await t.app.get(DataSource).query(`SELECT attempts, last_error FROM outbox_jobs WHERE target_id = ${driver === 'postgres' ? '$1' : '?'} AND kind = 'iot.activate-certificate'`, [cert.id]);
    assert.equal(Number(job.attempts), 1, 'no retries');
    assert.match(job.last_error, /^AWS_LIMIT_EXCEEDED: AWS IoT refused AttachPolicy: the quota on AWS IoT policies attached to one certificate is reached \(AWS: At most 10 policies/);
    assert.equal((iot.calls.get('AttachPolicy') ?? 0) - attachBefore, 1, 'the SDK did not retry it either');
    // The certificate's IoT status is set just after the job is marked dead (the handler's onDead), so it may lag a moment.
    let record: { iot: { status: string; lastError: string } } = { iot: { status: '', lastError: '' } };
    await eventually('the certificate shows the failure', async () => {
      record = (await t.http().get(`/v1/certificates/${cert.id}`).set(bearer(t.adminKey))).body;
      return record.iot.status === 'failed';
    });
    assert.match(record.iot.lastError, /AWS_LIMIT_EXCEEDED/);
    assert.equal(iot.certificate(cert.fingerprint)?.status, 'PENDING_ACTIVATION');
  });

  it('API mode: keeps retrying ThrottlingException with backoff and completes', async () => {
    iot.configure({ throttleProbability: 1 });
    try {
      const res = await issue(apiCa.id, 'api-throttled');
      await eventually('a few throttled attempts', async () => (await registerJob(res.body.id)).attempts >= 2);
      const job = await registerJob(res.body.id);
      assert.ok(['pending', 'running'].includes(job.status), 'not given up');
      assert.match(job.last_error ?? '', /IOT_THROTTLED/);
      iot.configure({ throttleProbability: 0 });
      await eventually('active', async () => (await iotStatus(res.body.id)) === 'active');
      assertFullyRegistered(res.body.fingerprint, 'api-throttled');
    } finally {
      iot.configure({ throttleProbability: 0 });
    }
  });

  it('keeps the audit chain verifiable', async () => {
    assert.equal((await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body.ok, true);
  });
});
