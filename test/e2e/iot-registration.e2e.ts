import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IotStandIn, KmsStandIn } from '../../tools/standins';
import { bearer, startTestApp, TestApp } from '../support/test-app';

/**
 * Registering our CAs with AWS IoT (the IoT stand-in, through the real SDK), with CA keys in KMS (the KMS
 * stand-in) and in the local store: DEFAULT mode proves key possession with a verification certificate
 * that the stand-in checks against the registration code and the CA key.
 */
describe('AWS IoT CA registration', () => {
  let kms: KmsStandIn;
  let iot: IotStandIn;
  let t: TestApp;
  let rootId: string;

  before(async () => {
    kms = await new KmsStandIn().start();
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', { kms, iot });
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'IoT Root', type: 'root', subject: { commonName: 'IoT Root CA' } });
    rootId = root.body.id;
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    await kms?.stop();
  });

  async function intermediate(keyBackend: 'local' | 'aws-kms', name: string): Promise<{ id: string; fingerprint: string }> {
    const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
      name,
      type: 'intermediate',
      parentId: rootId,
      keyBackend,
      subject: { commonName: name, organization: 'Acme' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  for (const keyBackend of ['aws-kms', 'local'] as const) {
    for (const certificateMode of ['DEFAULT', 'SNI_ONLY'] as const) {
      it(`registers a ${keyBackend} intermediate in ${certificateMode} mode`, async () => {
        const ca = await intermediate(keyBackend, `${keyBackend} ${certificateMode} CA`);
        const signsBefore = kms.calls.get('Sign') ?? 0;
        const res = await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({
          certificateMode,
          autoRegistration: true,
          setAsActive: true,
          deviceRegistration: 'jitr',
          policyName: 'fleet-device',
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.equal(res.body.caCertificateId, ca.fingerprint, 'the AWS IoT CA id is the SHA-256 of the CA certificate');
        assert.equal(res.body.status, 'ACTIVE');
        assert.equal(res.body.deviceRegistration, 'jitr');

        const registered = iot.caCertificate(ca.fingerprint);
        assert.ok(registered, 'the stand-in holds the CA');
        assert.equal(registered.status, 'ACTIVE');
        assert.equal(registered.autoRegistrationStatus, 'ENABLE');
        assert.equal(registered.certificateMode, certificateMode);
        const kmsSigns = (kms.calls.get('Sign') ?? 0) - signsBefore;
        const expectedSigns = keyBackend === 'aws-kms' && certificateMode === 'DEFAULT' ? 1 : 0;
        assert.equal(kmsSigns, expectedSigns, 'the verification certificate is signed by the CA key, in KMS when it lives there');

        const got = await t.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey));
        assert.deepEqual(got.body, res.body);
        const audit = await t.http().get('/v1/audit').query({ action: 'authority.iot-registered', targetId: ca.id }).set(bearer(t.adminKey));
        assert.equal(audit.body.items.length, 1);
      });
    }
  }

  it('reports a verification certificate AWS refuses as 502 IOT_REQUEST_REFUSED, and stores nothing', async () => {
    const ca = await intermediate('aws-kms', 'Stale code CA');
    iot.staleRegistrationCode = 'not-the-registration-code';
    try {
      const res = await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({ certificateMode: 'DEFAULT' });
      assert.equal(res.status, 502, JSON.stringify(res.body));
      assert.equal(res.body.code, 'IOT_REQUEST_REFUSED');
      assert.match(res.body.detail, /RegistrationCodeValidationException/);
      assert.match(res.headers['content-type'], /application\/problem\+json/);
    } finally {
      iot.staleRegistrationCode = undefined;
    }
    assert.equal((await t.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 404);
    assert.equal(iot.caCertificate(ca.fingerprint), undefined);
  });

  it('refuses to register an authority twice (409) and one AWS already has in DEFAULT mode elsewhere (409)', async () => {
    const ca = await intermediate('local', 'Twice CA');
    assert.equal((await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({})).status, 201);
    const again = await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({});
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'IOT_ALREADY_REGISTERED');

    const claimed = await intermediate('local', 'Claimed CA');
    const pem = (await t.http().get(`/v1/authorities/${claimed.id}`).set(bearer(t.adminKey))).body.certificatePem;
    iot.claimCaInAnotherAccount(pem);
    const res = await t.http().post(`/v1/authorities/${claimed.id}/iot-registration`).set(bearer(t.adminKey)).send({ certificateMode: 'DEFAULT' });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.code, 'IOT_CONFLICT');
  });

  it('deactivates a registration in AWS IoT (INACTIVE, auto-registration off) and audits it once', async () => {
    const ca = await intermediate('aws-kms', 'Deactivated CA');
    assert.equal((await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({})).status, 201);
    const res = await t.http().delete(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'INACTIVE');
    assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'INACTIVE');
    assert.equal(iot.caCertificate(ca.fingerprint)?.autoRegistrationStatus, 'DISABLE');
    assert.equal((await t.http().delete(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 200);
    const audit = await t.http().get('/v1/audit').query({ action: 'authority.iot-deactivated', targetId: ca.id }).set(bearer(t.adminKey));
    assert.equal(audit.body.items.length, 1);
  });

  it('answers 503 IOT_UNAVAILABLE while AWS IoT is down, stores nothing, and registers once it is back', async () => {
    const ca = await intermediate('local', 'Outage CA');
    iot.configure({ failureMode: 'http503' });
    try {
      const res = await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({});
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.code, 'IOT_UNAVAILABLE');
    } finally {
      iot.configure({ failureMode: 'none' });
    }
    assert.equal((await t.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey))).status, 404);
    assert.equal((await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({})).status, 201);
  });

  const refusals: [string, Record<string, unknown>, number, string][] = [
    ['jitp without a provisioning template', { deviceRegistration: 'jitp' }, 400, 'VALIDATION_FAILED'],
    ['a provisioning template without jitp', { provisioningTemplate: { templateBody: '{}', roleArn: 'arn:aws:iam::111122223333:role/JITP' } }, 400, 'VALIDATION_FAILED'],
    ['an unknown certificate mode', { certificateMode: 'BOTH' }, 400, 'VALIDATION_FAILED'],
    ['a role that is not an IAM role ARN', { deviceRegistration: 'jitp', provisioningTemplate: { templateBody: '{}', roleArn: 'admin' } }, 400, 'VALIDATION_FAILED'],
  ];
  for (const [name, body, status, code] of refusals) {
    it(`refuses ${name}`, async () => {
      const ca = await intermediate('local', `Refused ${name}`);
      const res = await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send(body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.code, code);
    });
  }

  it('refuses a disabled authority (409) and an unknown one (404)', async () => {
    const ca = await intermediate('local', 'Disabled CA');
    await t.http().post(`/v1/authorities/${ca.id}/disable`).set(bearer(t.adminKey));
    const disabled = await t.http().post(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(t.adminKey)).send({});
    assert.equal(disabled.status, 409);
    assert.equal(disabled.body.code, 'AUTHORITY_NOT_ACTIVE');
    const unknown = await t.http().post('/v1/authorities/00000000-0000-4000-8000-000000000000/iot-registration').set(bearer(t.adminKey)).send({});
    assert.equal(unknown.status, 404);
  });
});

/**
 * What AWS IoT does that a plain stand-in hides (docs/aws-behaviours.md): answers lost after AWS accepted a
 * registration (the retry meets ResourceAlreadyExistsException, which names the resource), and LimitExceededException
 * being a hard limit.
 */
describe('AWS IoT CA registration: lost answers and hard limits', () => {
  let kms: KmsStandIn;
  let iot: IotStandIn;
  /** The SDK retries a lost answer itself (IOT_MAX_ATTEMPTS 4, the default). */
  let t: TestApp;
  /** The SDK does not retry (IOT_MAX_ATTEMPTS=1): the lost answer reaches our API client, who retries. */
  let once: TestApp;
  let rootId: string;

  before(async () => {
    kms = await new KmsStandIn().start();
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', { kms, iot });
    once = await startTestApp('sqlite', { kms, iot, env: { IOT_MAX_ATTEMPTS: '1' } });
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Adoption Root', type: 'root', subject: { commonName: 'Adoption Root CA' } });
    rootId = root.body.id;
  });
  after(async () => {
    await t?.close();
    await once?.close();
    await iot?.stop();
    await kms?.stop();
  });

  async function intermediate(app: TestApp, keyBackend: 'local' | 'aws-kms', name: string, subject?: Record<string, string>): Promise<{ id: string; fingerprint: string }> {
    const parentId = app === t ? rootId : (await app.http().post('/v1/authorities').set(bearer(app.adminKey)).send({ name: `${name} root`, type: 'root', subject: { commonName: `${name} root` } })).body.id;
    const res = await app.http().post('/v1/authorities').set(bearer(app.adminKey)).send({ name, type: 'intermediate', parentId, keyBackend, subject: subject ?? { commonName: name } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  const REQUEST = { certificateMode: 'DEFAULT', autoRegistration: true, setAsActive: true, deviceRegistration: 'jitr', policyName: 'fleet-device' };

  function register(app: TestApp, id: string, body: Record<string, unknown> = REQUEST) {
    return app.http().post(`/v1/authorities/${id}/iot-registration`).set(bearer(app.adminKey)).send(body);
  }

  async function audit(app: TestApp, action: string, targetId: string) {
    return (await app.http().get('/v1/audit').query({ action, targetId }).set(bearer(app.adminKey))).body.items as { details: Record<string, unknown> }[];
  }

  /** What a registration looks like in our API and in AWS IoT, without ids and times: equal for equal requests. */
  async function registrationState(app: TestApp, ca: { id: string; fingerprint: string }) {
    const got = await app.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(app.adminKey));
    assert.equal(got.status, 200, JSON.stringify(got.body));
    const { caCertificateId, caCertificateArn, status, certificateMode, autoRegistration, deviceRegistration, policyName } = got.body;
    const aws = iot.caCertificate(ca.fingerprint)!;
    assert.equal(caCertificateId, ca.fingerprint);
    assert.equal(caCertificateArn, aws.certificateArn);
    return {
      ours: { status, certificateMode, autoRegistration, deviceRegistration, policyName },
      aws: { status: aws.status, autoRegistrationStatus: aws.autoRegistrationStatus, certificateMode: aws.certificateMode, registrationConfig: aws.registrationConfig },
    };
  }

  it('adopts a CA registration whose answer was lost when the SDK retries it itself, ending as the no-failure path does', async () => {
    const reference = await intermediate(t, 'aws-kms', 'Reference CA');
    assert.equal((await register(t, reference.id)).status, 201);
    const ca = await intermediate(t, 'aws-kms', 'Lost answer CA');
    const callsBefore = iot.calls.get('RegisterCACertificate') ?? 0;
    iot.configure({ loseResponses: { RegisterCACertificate: 1 } });
    const res = await register(t, ca.id);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(iot.lostResponses.get('RegisterCACertificate'), 1, 'the stand-in registered the CA and dropped the connection');
    assert.equal((iot.calls.get('RegisterCACertificate') ?? 0) - callsBefore, 2, 'the SDK retried and met ResourceAlreadyExistsException');
    assert.deepEqual(await registrationState(t, ca), await registrationState(t, reference));
    const registered = await audit(t, 'authority.iot-registered', ca.id);
    assert.equal(registered.length, 1);
    assert.equal(registered[0].details.adopted, true);
    const adopted = await audit(t, 'iot.registration-adopted', ca.id);
    assert.deepEqual(adopted.map((e) => [e.details.awsOperation, e.details.caCertificateId, e.details.updated]), [['RegisterCACertificate', ca.fingerprint, []]]);
    assert.deepEqual(await audit(t, 'iot.registration-adopted', reference.id), [], 'no adoption on the no-failure path');
  });

  for (const lostResponseAs of ['reset', 'http500'] as const) {
    it(`adopts on the API client's retry after a lost answer (${lostResponseAs}), instead of answering 409 forever`, async () => {
      const reference = await intermediate(once, 'aws-kms', `Reference ${lostResponseAs}`);
      assert.equal((await register(once, reference.id)).status, 201);
      const ca = await intermediate(once, 'aws-kms', `Retried ${lostResponseAs}`);
      iot.configure({ loseResponses: { RegisterCACertificate: 1 }, lostResponseAs });
      try {
        const first = await register(once, ca.id);
        assert.equal(first.status, 503, JSON.stringify(first.body));
        assert.equal(first.body.code, 'IOT_UNAVAILABLE');
      } finally {
        iot.configure({ lostResponseAs: 'reset' });
      }
      assert.ok(iot.caCertificate(ca.fingerprint), 'AWS IoT holds the CA');
      assert.equal((await once.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(once.adminKey))).status, 404, 'unknown to us');
      const retry = await register(once, ca.id);
      assert.equal(retry.status, 201, JSON.stringify(retry.body));
      assert.deepEqual(await registrationState(once, ca), await registrationState(once, reference));
      assert.equal((await audit(once, 'iot.registration-adopted', ca.id)).length, 1);
      const again = await register(once, ca.id);
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'IOT_ALREADY_REGISTERED');
    });
  }

  it('brings an adopted CA to the status and auto-registration asked for, and audits what it changed', async () => {
    const ca = await intermediate(once, 'local', 'Changed meanwhile CA');
    iot.configure({ loseResponses: { RegisterCACertificate: 1 } });
    assert.equal((await register(once, ca.id)).status, 503);
    // Someone switches it off in the console before the retry.
    iot.setCaCertificateStatus(ca.fingerprint, 'INACTIVE', 'DISABLE');
    const retry = await register(once, ca.id);
    assert.equal(retry.status, 201, JSON.stringify(retry.body));
    assert.equal(retry.body.status, 'ACTIVE');
    assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'ACTIVE');
    assert.equal(iot.caCertificate(ca.fingerprint)?.autoRegistrationStatus, 'ENABLE');
    const adopted = await audit(once, 'iot.registration-adopted', ca.id);
    assert.deepEqual(adopted.map((e) => e.details.updated), [['status', 'autoRegistration']]);
  });

  it('does not adopt a CA AWS IoT holds in another mode: a clear 409, nothing stored', async () => {
    const ca = await intermediate(once, 'local', 'Other mode CA');
    iot.configure({ loseResponses: { RegisterCACertificate: 1 } });
    assert.equal((await register(once, ca.id, { ...REQUEST, certificateMode: 'SNI_ONLY' })).status, 503);
    const res = await register(once, ca.id, REQUEST);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.code, 'IOT_CONFLICT');
    assert.match(res.body.detail, /SNI_ONLY mode, not DEFAULT/);
    assert.equal(res.body.resourceId, ca.fingerprint);
    assert.equal((await once.http().get(`/v1/authorities/${ca.id}/iot-registration`).set(bearer(once.adminKey))).status, 404);
    assert.deepEqual(await audit(once, 'iot.registration-adopted', ca.id), []);
  });

  it('answers the 11th CA with the same subject (LimitExceededException, HTTP 410) at once with 409 AWS_LIMIT_EXCEEDED naming the limit', async () => {
    const subject = { commonName: 'Same Subject CA', organization: 'Limits' };
    const cas = [];
    for (let i = 0; i < 11; i++) cas.push(await intermediate(t, 'local', `Same subject ${i}`, subject));
    for (const ca of cas.slice(0, 10)) assert.equal((await register(t, ca.id, { certificateMode: 'SNI_ONLY' })).status, 201);
    const callsBefore = iot.calls.get('RegisterCACertificate') ?? 0;
    const res = await register(t, cas[10].id, { certificateMode: 'SNI_ONLY' });
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.code, 'AWS_LIMIT_EXCEEDED');
    assert.equal(res.body.awsService, 'iot');
    assert.equal(res.body.awsError, 'LimitExceededException');
    assert.match(res.body.detail, /at most 10 CA certificates with the same subject/);
    assert.match(res.body.detail, /AWS: At most 10 CA certificates/, 'AWS’s own message');
    assert.equal(res.headers['retry-after'], undefined, 'nothing to retry');
    assert.equal((iot.calls.get('RegisterCACertificate') ?? 0) - callsBefore, 1, 'the SDK did not retry it as throttling');
    assert.equal((await t.http().get(`/v1/authorities/${cas[10].id}/iot-registration`).set(bearer(t.adminKey))).status, 404);
  });

  it('still retries ThrottlingException (the SDK backs off) and registers once AWS lets it', async () => {
    const ca = await intermediate(t, 'local', 'Throttled CA');
    iot.configure({ throttleProbability: 1 });
    const throttledBefore = iot.throttled;
    // AWS lets the call through once it has been throttled at least once (not after a fixed delay: a loaded machine
    // may not reach the stand-in within it).
    const release = setInterval(() => {
      if (iot.throttled > throttledBefore) iot.configure({ throttleProbability: 0 });
    }, 5);
    let res;
    try {
      res = await register(t, ca.id, { certificateMode: 'SNI_ONLY' });
    } finally {
      clearInterval(release);
      iot.configure({ throttleProbability: 0 });
    }
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.ok(iot.throttled - throttledBefore >= 1, 'the stand-in did throttle');
  });
});

describe('AWS IoT not configured', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('sqlite');
  });
  after(async () => {
    await t?.close();
  });

  it('answers 422 IOT_NOT_CONFIGURED instead of failing', async () => {
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'r', type: 'root', subject: { commonName: 'r' } });
    const res = await t.http().post(`/v1/authorities/${root.body.id}/iot-registration`).set(bearer(t.adminKey)).send({ certificateMode: 'SNI_ONLY' });
    assert.equal(res.status, 422);
    assert.equal(res.body.code, 'IOT_NOT_CONFIGURED');
  });
});
