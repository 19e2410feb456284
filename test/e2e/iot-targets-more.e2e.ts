import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, DescribeCertificateCommand, GetPolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { IotStandIn } from '../../tools/standins';
import { eventually } from '../support/eventually';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, stationToken } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

const POLICY = 'fleet-more';
const DEFAULT_ACCOUNT = '111122223333';
const SECRET = 'more-targets-events-secret-0123456789abcdef';
/** Stand-in accounts, chosen by the access key id of the SigV4 credentials (the stand-in's accessKeys knob). */
const ACCOUNTS = {
  'acct-a': { key: 'AKIAMORETARGETSACCTA1', account: '111111111111', region: 'us-east-1' },
  'acct-b': { key: 'AKIAMORETARGETSACCTB1', account: '222222222222', region: 'us-east-1' },
} as const;
type TargetName = keyof typeof ACCOUNTS;

/**
 * IoT targets, the second part (docs/iot-targets.md): allocation by EST label (over the claim's) and by profile
 * (IOT_PROFILE_ALLOCATION, for API issuance), JITR events checked against the account they come from, fleet audits
 * listing every target the CA is registered in, and policy templates synced to each of them.
 */
for (const { driver, skip } of drivers())
describe(`IoT targets: labels, profiles, events, audits, policies on ${driver}`, { skip }, () => {
  let iot: IotStandIn;
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-targets2-'));
  const savedEnv = { credentials: process.env.AWS_SHARED_CREDENTIALS_FILE, config: process.env.AWS_CONFIG_FILE };
  let claimCa: { id: string };
  let deviceCa: { id: string; fingerprint: string };

  function awsClient(name: TargetName): IoTClient {
    const { key, region } = ACCOUNTS[name];
    return new IoTClient({ region, endpoint: iot.endpoint, credentials: { accessKeyId: key, secretAccessKey: 'stand-in' } });
  }
  const place = (name: TargetName) => iot.place(ACCOUNTS[name].account, ACCOUNTS[name].region);

  async function admin(method: 'post' | 'get' | 'delete', url: string, body?: object) {
    const req = t.http()[method](url).set(bearer(t.adminKey));
    return body === undefined ? req : req.send(body);
  }

  /** Where AWS IoT has the certificate: the stand-in accounts (and the default one) that know it, with its status. */
  function whereIs(certificateId: string): Record<string, string> {
    const seen: Record<string, string> = {};
    for (const p of iot.placeList()) {
      const status = p.certificate(certificateId)?.status;
      if (status) seen[p.account] = status;
    }
    return seen;
  }

  async function activeIn(name: TargetName, certificateId: string): Promise<void> {
    await eventually(`${certificateId.slice(0, 8)} ACTIVE in ${name}`, async () => {
      try {
        return (await awsClient(name).send(new DescribeCertificateCommand({ certificateId }))).certificateDescription?.status === 'ACTIVE';
      } catch {
        return false;
      }
    });
  }

  before(async () => {
    iot = await new IotStandIn({ accessKeys: Object.fromEntries(Object.values(ACCOUNTS).map((a) => [a.key, a.account])) }).start();
    const credentials = Object.entries(ACCOUNTS).map(([name, a]) => `[${name}]\naws_access_key_id = ${a.key}\naws_secret_access_key = stand-in\n`).join('\n');
    fs.writeFileSync(path.join(dir, 'credentials'), credentials, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'config'), '');
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials');
    process.env.AWS_CONFIG_FILE = path.join(dir, 'config');
    t = await startTestApp(driver, {
      iot,
      env: {
        AWS_ACCOUNT_ID: DEFAULT_ACCOUNT,
        // The targets' endpoint is the stand-in's (plain http, localhost): allowed for tests only.
        IOT_TARGET_ENDPOINTS_ANY: 'true',
        // Device certificates issued through the API go to acct-b (the target is created after boot: checked at issuance).
        IOT_PROFILE_ALLOCATION: JSON.stringify({ device: { mode: 'fixed', targetId: 'acct-b' } }),
        IOT_EVENTS_SECRET: SECRET,
        IOT_MAX_ATTEMPTS: '1',
        OUTBOX_POLL_MS: '25',
        OUTBOX_BACKOFF_BASE_MS: '40',
        OUTBOX_BACKOFF_MAX_MS: '300',
        OUTBOX_MAX_ATTEMPTS: '60',
      },
    });
    for (const name of Object.keys(ACCOUNTS) as TargetName[]) {
      const { account, region } = ACCOUNTS[name];
      const res = await admin('post', '/v1/iot/targets', { id: name, accountId: account, region, profile: name, endpoint: iot.endpoint });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await awsClient(name).send(new CreatePolicyCommand({ policyName: POLICY, policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }));
    }
    const root = (await admin('post', '/v1/authorities', { name: 'More Root', type: 'root', subject: { commonName: 'More Root' } })).body;
    claimCa = (await admin('post', '/v1/authorities', { name: 'More Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'More Claims' } })).body;
    deviceCa = (await admin('post', '/v1/authorities', { name: 'More Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'More Devices' } })).body;
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    ssl.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
    for (const [name, value] of [['AWS_SHARED_CREDENTIALS_FILE', savedEnv.credentials], ['AWS_CONFIG_FILE', savedEnv.config]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  const register = (targetId: TargetName) => admin('post', `/v1/authorities/${deviceCa.id}/iot-registration`, { certificateMode: 'SNI_ONLY', deviceRegistration: 'api', policyName: POLICY, targetId });
  const template = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}' }] };

  it('syncs a policy template to every target a CA is registered in: those registered before, and one registered after', async () => {
    assert.equal((await register('acct-a')).status, 201);
    const saved = await admin('post', '/v1/iot/policies', { name: 'more-template', document: template });
    assert.equal(saved.status, 201, JSON.stringify(saved.body));
    await eventually('the template synced', async () => (await admin('get', '/v1/iot/policies/more-template')).body.iotStatus === 'synced');
    assert.ok(iot.policy('more-template'), 'in the default target');
    assert.ok(place('acct-a').policy('more-template'), 'in acct-a, where the CA is registered');
    assert.equal(place('acct-b').policy('more-template'), undefined, 'not in acct-b yet: no CA of ours there');

    // A CA registered in acct-b: every template follows it there (seen over acct-b's own AWS API).
    assert.equal((await register('acct-b')).status, 201);
    await eventually('the template reached acct-b', async () => {
      try {
        return (await awsClient('acct-b').send(new GetPolicyCommand({ policyName: 'more-template' }))).policyName === 'more-template';
      } catch {
        return false;
      }
    });
    // A new version reaches both targets.
    const v2 = { ...template, Statement: [{ ...template.Statement[0], Sid: 'v2' }] };
    assert.equal((await admin('post', '/v1/iot/policies', { name: 'more-template', document: v2 })).status, 201);
    await eventually('version 2 in both targets and the default', () =>
      [iot, place('acct-a'), place('acct-b')].every((p) => JSON.stringify(p.policy('more-template')?.document ?? {}).includes('"v2"')),
    );
  });

  let apiDevice: { id: string; fingerprint: string };

  it('allocates a certificate issued through the API by its profile (IOT_PROFILE_ALLOCATION): ACTIVE in acct-b, nowhere else', async () => {
    const res = await admin('post', '/v1/certificates', { authorityId: deviceCa.id, csr: ssl.newCsr('ec:P-256', '/CN=api-1').csrPem, profile: 'device', thingName: 'api-1' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.iot.targetId, 'acct-b');
    await activeIn('acct-b', res.body.fingerprint);
    // AWS shows ACTIVE a moment before the job records it; later steps rely on our record saying active.
    await eventually('our record says active', async () => (await admin('get', `/v1/certificates/${res.body.id}`)).body.iot.status === 'active');
    assert.deepEqual(whereIs(res.body.fingerprint), { [ACCOUNTS['acct-b'].account]: 'ACTIVE' });
    assert.ok(place('acct-b').thing('api-1'));
    apiDevice = res.body;
  });

  it('an EST label’s allocation takes precedence over the claim’s (claim label) and the profile’s (authority label)', async () => {
    const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, thingNameTemplate: 'lbl-{serial}', allocation: { mode: 'fixed', targetId: 'acct-a' } });
    const refused = await admin('post', '/v1/est/labels', { label: 'nowhere', kind: 'claim', claimId: claim.id, allocation: { mode: 'fixed', targetId: 'nope' } });
    assert.equal(refused.body.code, 'IOT_TARGET_NOT_FOUND');
    assert.equal((await admin('post', '/v1/est/labels', { label: 'bad', kind: 'claim', claimId: claim.id, allocation: { mode: 'sideways' } })).status, 400);
    const label = await admin('post', '/v1/est/labels', { label: 'line-b', kind: 'claim', claimId: claim.id, allocation: { mode: 'fixed', targetId: 'acct-b' } });
    assert.equal(label.status, 201, JSON.stringify(label.body));
    assert.deepEqual(label.body.allocation, { mode: 'fixed', targetId: 'acct-b' });
    const ops = await admin('post', '/v1/est/labels', { label: 'ops-a', kind: 'authority', authorityId: deviceCa.id, profile: 'device', allocation: { mode: 'fixed', targetId: 'acct-a' } });
    assert.equal(ops.status, 201, JSON.stringify(ops.body));

    const estBody = (subject: string) => ssl.newCsr('ec:P-256', subject).csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const enroll = (labelName: string, subject: string, authorization: string) =>
      t.http().post(`/.well-known/est/${labelName}/simpleenroll`).set('Content-Type', 'application/pkcs10').set('Authorization', authorization).send(estBody(subject));
    const byThing = async (thingName: string) => {
      const list = await admin('get', `/v1/certificates?thingName=${thingName}`);
      assert.equal(list.body.items.length, 1, JSON.stringify(list.body));
      return (await admin('get', `/v1/certificates/${list.body.items[0].id}`)).body;
    };

    // Through the label: acct-b, over the claim's acct-a.
    const viaLabel = await enroll('line-b', '/serialNumber=LBL1', `Bearer ${stationToken(t, station)}`);
    assert.equal(viaLabel.status, 200, viaLabel.text);
    const labelled = await byThing('lbl-LBL1');
    assert.equal(labelled.iot.targetId, 'acct-b');
    // The same claim through the exchange: the claim's own allocation.
    const viaExchange = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: 'LBL2', csr: ssl.newCsr('ec:P-256', '/CN=LBL2').csrPem });
    assert.equal(viaExchange.status, 201, JSON.stringify(viaExchange.body));
    assert.equal(viaExchange.body.iot.targetId, 'acct-a');
    // An authority label's allocation over the profile's (acct-b).
    const viaOps = await enroll('ops-a', '/CN=ops-1', `Bearer ${t.adminKey}`);
    assert.equal(viaOps.status, 200, viaOps.text);
    const operated = await byThing('ops-1');
    assert.equal(operated.iot.targetId, 'acct-a');

    await activeIn('acct-b', labelled.fingerprint);
    await activeIn('acct-a', viaExchange.body.certificateId);
    await activeIn('acct-a', operated.fingerprint);
    assert.deepEqual(whereIs(labelled.fingerprint), { [ACCOUNTS['acct-b'].account]: 'ACTIVE' });
    assert.deepEqual(whereIs(viaExchange.body.certificateId), { [ACCOUNTS['acct-a'].account]: 'ACTIVE' });
    assert.deepEqual(whereIs(operated.fingerprint), { [ACCOUNTS['acct-a'].account]: 'ACTIVE' });
  });

  it('refuses to delete a target an EST label still allocates to (409), deletes it once the label is gone', async () => {
    assert.equal((await admin('post', '/v1/iot/targets', { id: 'spare', accountId: '444444444444', region: 'us-east-1', endpoint: iot.endpoint })).status, 201);
    assert.equal((await admin('post', '/v1/est/labels', { label: 'spare-ops', kind: 'authority', authorityId: deviceCa.id, profile: 'device', allocation: { mode: 'weighted', weights: { spare: 1, 'acct-a': 1 } } })).status, 201);
    const busy = await admin('delete', '/v1/iot/targets/spare');
    assert.equal(busy.status, 409, JSON.stringify(busy.body));
    assert.match(busy.body.detail ?? busy.body.message ?? JSON.stringify(busy.body), /1 EST labels/);
    assert.equal((await admin('delete', '/v1/est/labels/spare-ops')).status, 200);
    assert.equal((await admin('delete', '/v1/iot/targets/spare')).status, 204);
  });

  it('checks a JITR event against the account it comes from: an account without our registration is refused (422, audited)', async () => {
    const post = (awsAccountId: string | undefined) =>
      t.http().post('/v1/iot/events').set('X-Fleet-Pki-Events-Secret', SECRET).send({
        certificateId: apiDevice.fingerprint,
        caCertificateId: deviceCa.fingerprint,
        certificateStatus: 'PENDING_ACTIVATION',
        timestamp: Date.now(),
        ...(awsAccountId ? { awsAccountId } : {}),
      });
    for (const account of ['999999999999', DEFAULT_ACCOUNT]) {
      // An unknown account; and the default target's, where this CA is not registered: never applied to `default`.
      const res = await post(account);
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.code, 'IOT_EVENT_UNKNOWN_TARGET');
    }
    assert.equal((await post(undefined)).status, 400, 'an event names its account');
    const refusals = await admin('get', '/v1/audit?action=iot.jitr-event-refused');
    assert.deepEqual(refusals.body.items.map((e: { details: { awsAccountId: string } }) => e.details.awsAccountId).sort(), [DEFAULT_ACCOUNT, '999999999999']);

    // From acct-b, where the certificate is: already active there, so nothing to do.
    const fromB = await post(ACCOUNTS['acct-b'].account);
    assert.equal(fromB.status, 200, JSON.stringify(fromB.body));
    assert.deepEqual(fromB.body, { decision: 'duplicate', certificateId: apiDevice.id });
    // From acct-a, where the CA is registered but the device is not allocated: refused in acct-a, not activated.
    const fromA = await post(ACCOUNTS['acct-a'].account);
    assert.equal(fromA.status, 200, JSON.stringify(fromA.body));
    assert.deepEqual(fromA.body, { decision: 'reject', certificateId: null });
    const audit = await admin('get', '/v1/audit?action=iot.jitr-event');
    const last = audit.body.items.find((e: { details: { awsAccountId: string } }) => e.details.awsAccountId === ACCOUNTS['acct-a'].account);
    assert.deepEqual(last.details.targetIds, ['acct-a']);
    assert.equal((await admin('get', `/v1/certificates/${apiDevice.id}`)).body.iot.status, 'active', 'the device in acct-b is untouched');
  });

  it('the fleet audit lists every target: drift in acct-b is found, named by target, and remediated there', async () => {
    const revoked = await admin('post', `/v1/certificates/${apiDevice.id}/revoke`, { reason: 'keyCompromise' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    await eventually('REVOKED in acct-b', () => place('acct-b').certificate(apiDevice.fingerprint)?.status === 'REVOKED');
    place('acct-b').setCertificateStatus(apiDevice.fingerprint, 'ACTIVE');
    const foreign = await place('acct-a').registerForeignCertificate(deviceCa.fingerprint);

    const started = await admin('post', '/v1/fleet/audits', {});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    let audit = started.body;
    await eventually('the audit finished', async () => (audit = (await admin('get', `/v1/fleet/audits/${started.body.id}?limit=500`)).body).status !== 'running');
    assert.equal(audit.status, 'done', JSON.stringify(audit.summary));
    const drift = audit.findings.filter((f: { type: string }) => f.type === 'IOT_STATUS_DRIFT');
    assert.deepEqual(drift.map((f: { resourceId: string; details: { targetId: string } }) => [f.resourceId, f.details.targetId]), [[apiDevice.fingerprint, 'acct-b']]);
    const unknown = audit.findings.filter((f: { type: string }) => f.type === 'IOT_UNKNOWN_CERTIFICATE');
    assert.deepEqual(unknown.map((f: { resourceId: string; details: { targetId: string } }) => [f.resourceId, f.details.targetId]), [[foreign.certificateId, 'acct-a']]);

    const remediated = await admin('post', `/v1/fleet/audits/${audit.id}/findings/${drift[0].id}/remediate`);
    assert.equal(remediated.status, 200, JSON.stringify(remediated.body));
    assert.deepEqual(remediated.body.remediationResult, { awsStatus: 'REVOKED', targetId: 'acct-b' });
    assert.equal(place('acct-b').certificate(apiDevice.fingerprint)?.status, 'REVOKED');
    const fixedForeign = await admin('post', `/v1/fleet/audits/${audit.id}/findings/${unknown[0].id}/remediate`);
    assert.equal(fixedForeign.status, 200, JSON.stringify(fixedForeign.body));
    assert.equal(place('acct-a').certificate(foreign.certificateId)?.status, 'REVOKED');
  });

  it('completes a fleet audit with one target failing, naming it IOT_TARGET_UNREACHABLE; the other targets are still checked', async () => {
    // acct-b drifts again (ACTIVE there, revoked here); acct-a, where the CA is registered too, answers 503 to everything.
    place('acct-b').setCertificateStatus(apiDevice.fingerprint, 'ACTIVE');
    const knobs = (failureMode: string) => fetch(`${iot.endpoint}/_standin/accounts/${ACCOUNTS['acct-a'].account}/${ACCOUNTS['acct-a'].region}/config`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ failureMode }),
    });
    assert.equal((await knobs('http503')).status, 200);
    try {
      const started = await admin('post', '/v1/fleet/audits', {});
      assert.equal(started.status, 202, JSON.stringify(started.body));
      let audit = started.body;
      await eventually('the audit finished', async () => (audit = (await admin('get', `/v1/fleet/audits/${started.body.id}?limit=500`)).body).status !== 'running');
      assert.equal(audit.status, 'done', JSON.stringify(audit.summary));
      const unreachable = audit.findings.filter((f: { type: string }) => f.type === 'IOT_TARGET_UNREACHABLE');
      assert.equal(unreachable.length, 1, JSON.stringify(audit.findings));
      assert.equal(unreachable[0].resourceId, 'acct-a');
      assert.equal(unreachable[0].resourceType, 'iot-target');
      assert.equal(unreachable[0].details.targetId, 'acct-a');
      assert.match(unreachable[0].details.error, /^[A-Z_]+$/, 'a code, not a message');
      assert.ok(!JSON.stringify(unreachable[0].details).includes(iot.endpoint), 'no endpoint in the finding');
      const drift = audit.findings.filter((f: { type: string }) => f.type === 'IOT_STATUS_DRIFT');
      assert.deepEqual(drift.map((f: { resourceId: string; details: { targetId: string } }) => [f.resourceId, f.details.targetId]), [[apiDevice.fingerprint, 'acct-b']]);
    } finally {
      await knobs('none');
      place('acct-b').setCertificateStatus(apiDevice.fingerprint, 'REVOKED');
    }
  });
});
