import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, DescribeCertificateCommand, GetRegistrationCodeCommand, IoTClient } from '@aws-sdk/client-iot';
import { DataSource } from 'typeorm';
import { IotStandIn } from '../../tools/standins';
import { eventually } from '../support/eventually';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, stationToken } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';
import { IotTargetRepository } from '../../src/iot/iot-target.repository';
import { IotTargetsService } from '../../src/iot/iot-targets.service';

const POLICY = 'fleet-device';
const DEFAULT_ACCOUNT = '111122223333';
/** Stand-in accounts, chosen by the access key id of the SigV4 credentials (the stand-in's accessKeys knob). */
const ACCOUNTS = {
  'acct-a': { key: 'AKIATARGETSACCOUNTA01', account: '111111111111', region: 'us-east-1' },
  'acct-b': { key: 'AKIATARGETSACCOUNTB01', account: '222222222222', region: 'us-east-1' },
  'acct-c-eu': { key: 'AKIATARGETSACCOUNTC01', account: '333333333333', region: 'eu-west-1' },
  'acct-e-eu': { key: 'AKIATARGETSACCOUNTE01', account: '555555555555', region: 'eu-west-1' },
} as const;
type TargetName = keyof typeof ACCOUNTS;

/**
 * IoT targets (docs/iot-targets.md): several AWS accounts and regions, played by one IoT stand-in that keeps separate
 * state per (account, region). A CA is registered SNI_ONLY in two accounts and DEFAULT in a third region; a claim
 * allocating by a device attribute sends each device to its account (seen over the AWS API of that account); a device
 * moves between accounts; refusals are clear.
 */
for (const { driver, skip } of drivers())
describe(`IoT targets on ${driver}`, { skip }, () => {
  let iot: IotStandIn;
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-targets-'));
  const savedEnv = { credentials: process.env.AWS_SHARED_CREDENTIALS_FILE, config: process.env.AWS_CONFIG_FILE };
  let claimCa: { id: string };
  let deviceCa: { id: string; fingerprint: string };

  /** The AWS API of one stand-in account, as that account's owner sees it. */
  function awsClient(name: TargetName): IoTClient {
    const { key, region } = ACCOUNTS[name];
    return new IoTClient({ region, endpoint: iot.endpoint, credentials: { accessKeyId: key, secretAccessKey: 'stand-in' } });
  }

  async function admin(method: 'post' | 'get' | 'delete', url: string, body?: object) {
    const req = t.http()[method](url).set(bearer(t.adminKey));
    return body === undefined ? req : req.send(body);
  }

  before(async () => {
    iot = await new IotStandIn({ accessKeys: Object.fromEntries(Object.values(ACCOUNTS).map((a) => [a.key, a.account])) }).start();
    // Targets take their credentials from named profiles of the shared credentials file: no secret goes through the API.
    const credentials = Object.entries(ACCOUNTS)
      .map(([name, a]) => `[${name}]\naws_access_key_id = ${a.key}\naws_secret_access_key = stand-in\n`)
      .join('\n');
    fs.writeFileSync(path.join(dir, 'credentials'), credentials, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'config'), '');
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(dir, 'credentials');
    process.env.AWS_CONFIG_FILE = path.join(dir, 'config');
    t = await startTestApp(driver, {
      iot,
      // IOT_TARGET_ENDPOINTS_ANY: the targets' endpoint is the stand-in's (plain http, localhost), allowed for tests only.
      env: { AWS_ACCOUNT_ID: DEFAULT_ACCOUNT, IOT_TARGET_ENDPOINTS_ANY: 'true', IOT_MAX_ATTEMPTS: '1', OUTBOX_POLL_MS: '25', OUTBOX_BACKOFF_BASE_MS: '40', OUTBOX_BACKOFF_MAX_MS: '300', OUTBOX_MAX_ATTEMPTS: '60' },
    });
    for (const name of Object.keys(ACCOUNTS) as TargetName[]) {
      const { account, region } = ACCOUNTS[name];
      const res = await admin('post', '/v1/iot/targets', { id: name, accountId: account, region, profile: name, endpoint: iot.endpoint, rateLimits: { RegisterCertificate: 20 } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await awsClient(name).send(new CreatePolicyCommand({ policyName: POLICY, policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }));
    }
    const root = (await admin('post', '/v1/authorities', { name: 'Targets Root', type: 'root', subject: { commonName: 'Targets Root' } })).body;
    claimCa = (await admin('post', '/v1/authorities', { name: 'Targets Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Targets Claims' } })).body;
    deviceCa = (await admin('post', '/v1/authorities', { name: 'Targets Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Targets Devices' } })).body;
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

  function register(targetId: string | undefined, certificateMode: 'DEFAULT' | 'SNI_ONLY') {
    return admin('post', `/v1/authorities/${deviceCa.id}/iot-registration`, { certificateMode, deviceRegistration: 'api', policyName: POLICY, ...(targetId ? { targetId } : {}) });
  }

  it('lists the implicit default target first, then the targets added (audited)', async () => {
    const res = await admin('get', '/v1/iot/targets');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.items.map((x: { id: string }) => x.id), ['default', 'acct-a', 'acct-b', 'acct-c-eu', 'acct-e-eu']);
    assert.equal(res.body.items[0].accountId, DEFAULT_ACCOUNT);
    assert.equal(res.body.items[0].region, 'us-east-1');
    assert.deepEqual(res.body.items[1].rateLimits, { RegisterCertificate: 20 });
    assert.equal((await admin('post', '/v1/iot/targets', { id: 'acct-a', accountId: '999999999999', region: 'us-east-1' })).body.code, 'IOT_TARGET_EXISTS');
    assert.equal((await admin('post', '/v1/iot/targets', { id: 'default', accountId: '999999999999', region: 'us-east-1' })).status, 409);
    assert.equal((await admin('get', '/v1/iot/targets/nope')).body.code, 'IOT_TARGET_NOT_FOUND');
    const audit = await admin('get', '/v1/audit?action=iot-target.created');
    assert.equal(audit.body.items.length, 4);
  });

  it('refuses a second target for an account and region already named, the default\'s included (409 IOT_TARGET_DUPLICATE_ACCOUNT)', async () => {
    const twin = await admin('post', '/v1/iot/targets', { id: 'acct-a-twin', accountId: ACCOUNTS['acct-a'].account, region: ACCOUNTS['acct-a'].region, profile: 'acct-a', endpoint: iot.endpoint });
    assert.equal(twin.status, 409, JSON.stringify(twin.body));
    assert.equal(twin.body.code, 'IOT_TARGET_DUPLICATE_ACCOUNT');
    assert.match(twin.body.detail, /acct-a/);
    const defaultTwin = await admin('post', '/v1/iot/targets', { id: 'default-twin', accountId: DEFAULT_ACCOUNT, region: 'us-east-1' });
    assert.equal(defaultTwin.body.code, 'IOT_TARGET_DUPLICATE_ACCOUNT', JSON.stringify(defaultTwin.body));
    assert.equal((await admin('get', '/v1/iot/targets/acct-a-twin')).status, 404);
    assert.equal((await admin('get', '/v1/iot/targets/default-twin')).status, 404);
    // The same account in another region is another target.
    assert.equal((await admin('post', '/v1/iot/targets', { id: 'acct-a-eu', accountId: ACCOUNTS['acct-a'].account, region: 'eu-central-1' })).status, 201);
    assert.equal((await admin('delete', '/v1/iot/targets/acct-a-eu')).status, 204);
  });

  it('shows roleArn, profile and endpoint to admins only', async () => {
    const auditor = (await admin('post', '/v1/api-keys', { name: 'targets auditor', role: 'auditor' })).body.key as string;
    const operator = (await admin('post', '/v1/api-keys', { name: 'targets operator', role: 'operator' })).body.key as string;
    const asAdmin = (await admin('get', '/v1/iot/targets/acct-a')).body;
    assert.equal(asAdmin.profile, 'acct-a');
    assert.equal(asAdmin.endpoint, iot.endpoint);
    assert.ok('roleArn' in asAdmin);
    for (const key of [auditor, operator]) {
      const one = await t.http().get('/v1/iot/targets/acct-a').set(bearer(key));
      assert.equal(one.status, 200);
      assert.equal(one.body.accountId, ACCOUNTS['acct-a'].account);
      for (const field of ['roleArn', 'profile', 'endpoint']) assert.ok(!(field in one.body), `${field} hidden`);
      const list = await t.http().get('/v1/iot/targets').set(bearer(key));
      assert.equal(list.status, 200);
      for (const item of list.body.items) for (const field of ['roleArn', 'profile', 'endpoint']) assert.ok(!(field in item), `${item.id}: ${field} hidden`);
    }
  });

  it('rebuilds a target\'s AWS client when the target was re-created with the same id elsewhere (another replica)', async () => {
    const created = await admin('post', '/v1/iot/targets', { id: 'cache-probe', accountId: '666666666666', region: 'us-east-1', profile: 'acct-a', endpoint: iot.endpoint });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const service = t.app.get(IotTargetsService);
    const repository = t.app.get(IotTargetRepository);
    const first = await service.registryFor('cache-probe');
    assert.equal(await service.registryFor('cache-probe'), first, 'the same version reuses its client');
    // Another replica deletes and re-creates it (this replica's cache is not told): another account and profile.
    await repository.delete('cache-probe');
    await repository.insert({ ...created.body, accountId: '777777777777', profile: 'acct-b', createdAt: new Date(Date.now() + 1000).toISOString() });
    const second = await service.registryFor('cache-probe');
    assert.notEqual(second, first, 'a new version gets a new client');
    assert.equal(await service.registryFor('cache-probe'), second);
    await repository.delete('cache-probe');
    await assert.rejects(service.registryFor('cache-probe'), (err: { code?: string }) => err.code === 'IOT_TARGET_NOT_FOUND');
  });

  it('registers the CA SNI_ONLY in two accounts and DEFAULT in a third region; DEFAULT twice in a region is refused', async () => {
    for (const name of ['acct-a', 'acct-b'] as const) {
      const res = await register(name, 'SNI_ONLY');
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.targetId, name);
    }
    const eu = await register('acct-c-eu', 'DEFAULT');
    assert.equal(eu.status, 201, JSON.stringify(eu.body));
    // Each account holds its own registration, seen over its own AWS API.
    assert.equal(iot.place(ACCOUNTS['acct-a'].account, 'us-east-1').caCertificate(deviceCa.fingerprint)?.certificateMode, 'SNI_ONLY');
    assert.equal(iot.place(ACCOUNTS['acct-b'].account, 'us-east-1').caCertificate(deviceCa.fingerprint)?.certificateMode, 'SNI_ONLY');
    assert.equal(iot.place(ACCOUNTS['acct-c-eu'].account, 'eu-west-1').caCertificate(deviceCa.fingerprint)?.certificateMode, 'DEFAULT');
    assert.equal(iot.caCertificate(deviceCa.fingerprint), undefined, 'not in the default account');

    // DEFAULT in a second account of eu-west-1: refused before any AWS call, with a clear code.
    const callsBefore = iot.place(ACCOUNTS['acct-e-eu'].account, 'eu-west-1').requests().length;
    const refused = await register('acct-e-eu', 'DEFAULT');
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'IOT_DEFAULT_MODE_TAKEN');
    assert.equal(iot.place(ACCOUNTS['acct-e-eu'].account, 'eu-west-1').requests().length, callsBefore);
    assert.equal((await register('nowhere', 'SNI_ONLY')).body.code, 'IOT_TARGET_NOT_FOUND');
    assert.equal((await register('acct-a', 'SNI_ONLY')).body.code, 'IOT_ALREADY_REGISTERED');
    const get = await admin('get', `/v1/authorities/${deviceCa.id}/iot-registration?targetId=acct-b`);
    assert.equal(get.status, 200);
    assert.equal(get.body.certificateMode, 'SNI_ONLY');
    assert.equal((await admin('get', `/v1/authorities/${deviceCa.id}/iot-registration`)).body.code, 'IOT_REGISTRATION_NOT_FOUND', 'not in the default target');
    const audit = await admin('get', `/v1/audit?action=authority.iot-registered&targetId=${deviceCa.id}`);
    assert.deepEqual(audit.body.items.map((e: { details: { targetId: string } }) => e.details.targetId).sort(), ['acct-a', 'acct-b', 'acct-c-eu']);
  });

  let moved: { id: string; fingerprint: string };

  it('allocates devices by a device attribute: each lands ACTIVE in its account, and nowhere else', async () => {
    assert.equal(
      (await admin('post', '/v1/claims', { name: 'x', factory: 'f', maxDevices: 1, notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'x-{serial}', claimCertificate: { generateKey: true }, claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, allocation: { mode: 'fixed', targetId: 'nope' } })).body.code,
      'IOT_TARGET_NOT_FOUND',
    );
    const { station } = await createClaim(t, {
      claimAuthorityId: claimCa.id,
      deviceAuthorityId: deviceCa.id,
      thingNameTemplate: 'tgt-{serial}',
      allocation: { mode: 'attribute', attribute: 'region', map: { us: 'acct-a', ca: 'acct-b', eu: 'acct-c-eu' } },
    });
    const exchange = (serial: string, region?: string) =>
      t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: serial, csr: ssl.newCsr('ec:P-256', `/CN=${serial}`).csrPem, ...(region ? { attributes: { region } } : {}) });

    const devices: { serial: string; region: string; target: TargetName }[] = [
      { serial: 'US0001', region: 'us', target: 'acct-a' },
      { serial: 'CA0001', region: 'ca', target: 'acct-b' },
      { serial: 'EU0001', region: 'eu', target: 'acct-c-eu' },
    ];
    const issued: Record<string, { id: string; certificateId: string }> = {};
    for (const device of devices) {
      const res = await exchange(device.serial, device.region);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(
        { targetId: res.body.iot.targetId, accountId: res.body.iot.accountId, region: res.body.iot.region },
        { targetId: device.target, accountId: ACCOUNTS[device.target].account, region: ACCOUNTS[device.target].region },
      );
      issued[device.serial] = res.body;
    }
    for (const device of devices) {
      const { certificateId } = issued[device.serial];
      await eventually(`${device.serial} ACTIVE in ${device.target}`, async () => {
        try {
          return (await awsClient(device.target).send(new DescribeCertificateCommand({ certificateId }))).certificateDescription?.status === 'ACTIVE';
        } catch {
          return false;
        }
      });
      // Thing and policy in that account; the certificate unknown to every other account.
      const place = iot.place(ACCOUNTS[device.target].account, ACCOUNTS[device.target].region);
      assert.ok(place.thing(`tgt-${device.serial}`));
      assert.deepEqual(place.policiesAttachedTo(place.certificate(certificateId)!.certificateArn), [POLICY]);
      for (const other of iot.placeList().filter((p) => p !== place)) assert.equal(other.certificate(certificateId), undefined, `${device.serial} not in ${other.account}/${other.region}`);
    }
    // The inspection API lists each account's state.
    const accounts = (await fetch(`${iot.endpoint}/_standin/accounts`).then((r) => r.json())) as { accounts: { account: string; region: string; certificates: { certificateId: string }[] }[] };
    const inA = accounts.accounts.find((a) => a.account === ACCOUNTS['acct-a'].account && a.region === 'us-east-1');
    assert.deepEqual(inA?.certificates.map((c) => c.certificateId), [issued.US0001.certificateId]);

    const unmapped = await exchange('XX0001', 'mars');
    assert.equal(unmapped.status, 400, JSON.stringify(unmapped.body));
    assert.equal((await exchange('XX0002')).status, 400, 'no attribute, no default: refused');
    moved = { id: issued.US0001.id, fingerprint: issued.US0001.certificateId };
  });

  it('moves a device: ACTIVE in the new account first, then INACTIVE in the old; audited', async () => {
    assert.equal((await admin('post', `/v1/certificates/${moved.id}/iot-target`, { targetId: 'nope' })).body.code, 'IOT_TARGET_NOT_FOUND');
    assert.equal((await admin('post', `/v1/certificates/${moved.id}/iot-target`, { targetId: 'acct-e-eu' })).body.code, 'IOT_REGISTRATION_NOT_FOUND', 'the CA is not registered there');
    const res = await admin('post', `/v1/certificates/${moved.id}/iot-target`, { targetId: 'acct-b' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.iot.targetId, 'acct-b');
    const newPlace = iot.place(ACCOUNTS['acct-b'].account, 'us-east-1');
    const oldPlace = iot.place(ACCOUNTS['acct-a'].account, 'us-east-1');
    await eventually('ACTIVE in acct-b and INACTIVE in acct-a', () => newPlace.certificate(moved.fingerprint)?.status === 'ACTIVE' && oldPlace.certificate(moved.fingerprint)?.status === 'INACTIVE');
    await eventually('our record says active', async () => (await admin('get', `/v1/certificates/${moved.id}`)).body.iot.status === 'active');
    const view = (await admin('get', `/v1/certificates/${moved.id}`)).body;
    assert.equal(view.iot.targetId, 'acct-b');
    assert.ok(newPlace.thing('tgt-US0001'));
    const audit = await admin('get', `/v1/audit?action=certificate.iot-target-moved&targetId=${moved.id}`);
    assert.deepEqual(audit.body.items.map((e: { details: unknown }) => e.details), [{ fromTargetId: 'acct-a', toTargetId: 'acct-b' }]);
  });

  /** One stand-in account failing every call (503) or answering again. */
  async function failing(name: TargetName, on: boolean) {
    const { account, region } = ACCOUNTS[name];
    const res = await fetch(`${iot.endpoint}/_standin/accounts/${account}/${region}/config`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ failureMode: on ? 'http503' : 'none' }),
    });
    assert.equal(res.status, 200);
  }

  let fixedToA: ((serial: string) => Promise<{ id: string; fingerprint: string }>) | undefined;
  /** A device certificate issued into acct-a (a claim allocating every device there), ACTIVE there and in our record. */
  async function deviceInA(serial: string): Promise<{ id: string; fingerprint: string }> {
    const device = await exchangeIntoA(serial);
    await eventually(`${serial} ACTIVE in acct-a`, () => iot.place(ACCOUNTS['acct-a'].account, 'us-east-1').certificate(device.fingerprint)?.status === 'ACTIVE');
    // AWS shows ACTIVE a moment before the job records it: a move started in between would race the registration.
    await eventually(`${serial} active in our record`, async () => (await iotStatusOf(device.id)) === 'active');
    return device;
  }

  async function iotStatusOf(id: string): Promise<string> {
    return (await admin('get', `/v1/certificates/${id}`)).body.iot.status;
  }

  /** A device certificate issued into acct-a; its registration there is left to run. */
  async function exchangeIntoA(serial: string): Promise<{ id: string; fingerprint: string }> {
    if (!fixedToA) {
      const { station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, thingNameTemplate: 'mv-{serial}', allocation: { mode: 'fixed', targetId: 'acct-a' } });
      fixedToA = async (s: string) => {
        const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: s, csr: ssl.newCsr('ec:P-256', `/CN=${s}`).csrPem });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return { id: res.body.id, fingerprint: res.body.certificateId };
      };
    }
    return fixedToA!(serial);
  }

  it('revokes a moved certificate in the old account too, when the move job could not set it INACTIVE there', async () => {
    const device = await deviceInA('MV0001');
    const a = iot.place(ACCOUNTS['acct-a'].account, 'us-east-1');
    const b = iot.place(ACCOUNTS['acct-b'].account, 'us-east-1');
    await failing('acct-a', true);
    try {
      assert.equal((await admin('post', `/v1/certificates/${device.id}/iot-target`, { targetId: 'acct-b' })).status, 200);
      await eventually('ACTIVE in acct-b', () => b.certificate(device.fingerprint)?.status === 'ACTIVE');
      assert.equal(a.certificate(device.fingerprint)?.status, 'ACTIVE', 'acct-a fails: the move job cannot set it INACTIVE there');
      const revoked = await admin('post', `/v1/certificates/${device.id}/revoke`, { reason: 'keyCompromise' });
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      // The current target first: the failing old one does not hold it up.
      await eventually('REVOKED in acct-b', () => b.certificate(device.fingerprint)?.status === 'REVOKED');
    } finally {
      await failing('acct-a', false);
    }
    // The revocation (retried until it lands) reaches the old account once it answers again.
    await eventually('REVOKED in acct-a', () => a.certificate(device.fingerprint)?.status === 'REVOKED');
    const again = await admin('post', `/v1/certificates/${device.id}/iot-target`, { targetId: 'acct-a' });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'CERTIFICATE_ALREADY_REVOKED');
  });

  it('a registration finishing in acct-a just after a move to acct-b leaves the move to register it in acct-b', async () => {
    const a = iot.place(ACCOUNTS['acct-a'].account, 'us-east-1');
    const b = iot.place(ACCOUNTS['acct-b'].account, 'us-east-1');
    const registerJob = async (id: string) =>
      (await t.app.get(DataSource).query(`SELECT status FROM outbox_jobs WHERE target_id = ${driver === 'postgres' ? '$1' : '?'} AND kind = 'iot.register-certificate'`, [id]))[0]?.status as string;
    let device: { id: string; fingerprint: string };
    // Every AWS call takes 1 s: the registration in acct-a is caught with its last step (UpdateCertificate ACTIVE) on
    // the wire, and the move is made then. acct-b failing holds the move's job back until the registration is done.
    const updatesBefore = iot.calls.get('UpdateCertificate') ?? 0;
    iot.configure({ latencyMs: 1000 });
    try {
      device = await exchangeIntoA('MV0003');
      await eventually('UpdateCertificate ACTIVE on its way to acct-a', () => (iot.calls.get('UpdateCertificate') ?? 0) > updatesBefore, 15_000, 5);
      await failing('acct-b', true);
      assert.equal((await admin('post', `/v1/certificates/${device.id}/iot-target`, { targetId: 'acct-b' })).status, 200);
    } finally {
      iot.configure({ latencyMs: 0 }); // the call on the wire keeps its 1 s
    }
    try {
      await eventually('the registration in acct-a is done', async () => (await registerJob(device.id)) === 'done');
      assert.equal(a.certificate(device.fingerprint)?.status, 'ACTIVE', 'the registration did reach ACTIVE in acct-a');
      // Recording 'active' now would tell the move's job the device is live in acct-b: it would skip registering it
      // there and set it INACTIVE in acct-a, leaving the device no account to connect to.
      assert.equal(await iotStatusOf(device.id), 'pending', 'the move is still to do');
    } finally {
      await failing('acct-b', false);
    }
    await eventually('ACTIVE in acct-b and INACTIVE in acct-a', () => b.certificate(device.fingerprint)?.status === 'ACTIVE' && a.certificate(device.fingerprint)?.status === 'INACTIVE');
    await eventually('our record says active', async () => (await iotStatusOf(device.id)) === 'active');
    assert.deepEqual(b.principalsOf('mv-MV0003'), [b.certificate(device.fingerprint)!.certificateArn], 'attached to its thing in acct-b');
  });

  it('moves A→B→C before the first job is done: INACTIVE in A, ACTIVE in C', async () => {
    const device = await deviceInA('MV0002');
    const a = iot.place(ACCOUNTS['acct-a'].account, 'us-east-1');
    const b = iot.place(ACCOUNTS['acct-b'].account, 'us-east-1');
    const c = iot.place(ACCOUNTS['acct-c-eu'].account, 'eu-west-1');
    // acct-b failing holds the first job (A→B) back until the second move makes it give way ("moved again").
    await failing('acct-b', true);
    try {
      assert.equal((await admin('post', `/v1/certificates/${device.id}/iot-target`, { targetId: 'acct-b' })).status, 200);
      const res = await admin('post', `/v1/certificates/${device.id}/iot-target`, { targetId: 'acct-c-eu' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.iot.targetId, 'acct-c-eu');
    } finally {
      await failing('acct-b', false);
    }
    await eventually('ACTIVE in acct-c-eu and INACTIVE in acct-a', () => c.certificate(device.fingerprint)?.status === 'ACTIVE' && a.certificate(device.fingerprint)?.status === 'INACTIVE');
    await eventually('our record says active', async () => (await admin('get', `/v1/certificates/${device.id}`)).body.iot.status === 'active');
    // The first job may have registered it in acct-b in the moment acct-b answered again; the sweep then leaves it
    // there INACTIVE. Either way the device connects through acct-c-eu only.
    await eventually('not ACTIVE in acct-b', () => b.certificate(device.fingerprint)?.status !== 'ACTIVE');
    assert.deepEqual(a.principalsOf('mv-MV0002'), [], 'detached from its thing in acct-a');
  });

  it('throttles per account: a tight quota in one account leaves the others alone', async () => {
    const knobs = await fetch(`${iot.endpoint}/_standin/accounts/${ACCOUNTS['acct-e-eu'].account}/eu-west-1/config`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ tps: 1, burst: 1 }),
    }).then((r) => r.json() as Promise<{ tps: number }>);
    assert.equal(knobs.tps, 1);
    const tight = new IoTClient({ region: 'eu-west-1', endpoint: iot.endpoint, maxAttempts: 1, credentials: { accessKeyId: ACCOUNTS['acct-e-eu'].key, secretAccessKey: 'stand-in' } });
    const loose = new IoTClient({ region: 'eu-west-1', endpoint: iot.endpoint, maxAttempts: 1, credentials: { accessKeyId: ACCOUNTS['acct-c-eu'].key, secretAccessKey: 'stand-in' } });
    const outcomes = async (client: IoTClient) =>
      Promise.all(Array.from({ length: 6 }, () => client.send(new GetRegistrationCodeCommand({})).then(() => 'ok', (err: Error) => err.name)));
    assert.ok((await outcomes(tight)).includes('ThrottlingException'), 'the tight account throttles');
    assert.deepEqual(await outcomes(loose), Array(6).fill('ok'), 'another account of the region does not');
    assert.ok(iot.place(ACCOUNTS['acct-e-eu'].account, 'eu-west-1').throttled > 0);
    assert.equal(iot.place(ACCOUNTS['acct-c-eu'].account, 'eu-west-1').throttled, 0);
  });

  it('allocates by weight, the same serial always to the same target', async () => {
    const { station } = await createClaim(t, {
      claimAuthorityId: claimCa.id,
      deviceAuthorityId: deviceCa.id,
      thingNameTemplate: 'w-{serial}',
      allowReprovisioning: true,
      allocation: { mode: 'weighted', weights: { 'acct-a': 1, 'acct-b': 1 } },
    });
    const exchange = (serial: string) =>
      t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: serial, csr: ssl.newCsr('ec:P-256', `/CN=${serial}`).csrPem });
    const first: Record<string, string> = {};
    for (let i = 0; i < 8; i++) {
      const res = await exchange(`W${i}`);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      first[`W${i}`] = res.body.iot.targetId;
    }
    assert.deepEqual(new Set(Object.values(first)), new Set(['acct-a', 'acct-b']), JSON.stringify(first));
    // Re-provisioned with a new key: the same target.
    for (const serial of ['W0', 'W1', 'W2']) assert.equal((await exchange(serial)).body.iot.targetId, first[serial]);
  });

  it('refuses to delete a target still referenced (409), deletes an unused one (audited)', async () => {
    const busy = await admin('delete', '/v1/iot/targets/acct-a');
    assert.equal(busy.status, 409, JSON.stringify(busy.body));
    assert.equal(busy.body.code, 'IOT_TARGET_IN_USE');
    assert.equal((await admin('delete', '/v1/iot/targets/default')).body.code, 'IOT_TARGET_IN_USE');
    assert.equal((await admin('delete', '/v1/iot/targets/acct-e-eu')).status, 204);
    assert.equal((await admin('delete', '/v1/iot/targets/acct-e-eu')).body.code, 'IOT_TARGET_NOT_FOUND');
    assert.equal((await admin('get', '/v1/audit?action=iot-target.deleted')).body.items.length, 2, 'acct-e-eu, and acct-a-eu of the duplicate-account test');
  });
});

/** Without IOT_TARGET_ENDPOINTS_ANY, signed AWS calls go to AWS hosts over https only (docs/threat-model.md). */
describe('IoT target endpoints, by default', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp('sqlite');
  });
  after(async () => {
    await t?.close();
  });

  it('refuses endpoints other than https AWS hosts unless IOT_TARGET_ENDPOINTS_ANY', async () => {
    const create = (id: string, accountId: string, endpoint: string) =>
      t.http().post('/v1/iot/targets').set(bearer(t.adminKey)).send({ id, accountId, region: 'eu-west-1', endpoint });
    for (const [k, endpoint] of ['http://169.254.169.254/', 'https://internal.example.com', 'http://iot.eu-west-1.amazonaws.com', 'https://amazonaws.com.evil.example', 'https://user:pw@iot.eu-west-1.amazonaws.com'].entries()) {
      const res = await create(`bad-${k}`, `10000000000${k}`, endpoint);
      assert.ok(res.status === 400 || res.status === 422, `${endpoint}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'VALIDATION_FAILED', endpoint);
    }
    assert.equal((await t.http().get('/v1/iot/targets').set(bearer(t.adminKey))).body.items.length, 1, 'nothing created');
    for (const [k, endpoint] of ['https://iot.eu-west-1.amazonaws.com', 'https://vpce-0abc-123.iot.cn-north-1.amazonaws.com.cn'].entries()) {
      const res = await create(`good-${k}`, `20000000000${k}`, endpoint);
      assert.equal(res.status, 201, `${endpoint}: ${JSON.stringify(res.body)}`);
    }
  });
});
