import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IotStandIn } from '../support/iot-standin';
import { KmsStandIn } from '../support/kms-standin';
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
