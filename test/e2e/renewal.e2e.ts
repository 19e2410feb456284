import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey, KeyObject, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, CreateThingCommand, IoTClient } from '@aws-sdk/client-iot';
import type { Response } from 'supertest';
import { buildCsr, deviceKeyAndCsr } from '../../tools/csr-builder';
import { IotStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, deviceToken } from '../support/station';
import { bearer, binaryBody, ManualClock, startTestApp, TestApp } from '../support/test-app';
import { eventually } from '../support/eventually';
import { postJsonOverTls } from '../support/https-client';

type Body = Response['body'];
const DAY = 86_400_000;
const GRACE_SECONDS = 3600;


/**
 * Devices renew their own certificates (JWT here; mutual TLS in the claims suite's listener is shared code), and
 * rotation campaigns drive renewals at fleet scale, with AWS IoT (the stand-in) kept in step. The clock is the test's.
 */
describe('certificate renewal and rotation campaigns', () => {
  const clock = new ManualClock();
  const ssl = new OpenSslWorkspace();
  let iot: IotStandIn;
  let t: TestApp;
  let rootPem: string;
  let apiCa: Body;

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', {
      iot,
      clock,
      env: { RENEWAL_GRACE_SECONDS: String(GRACE_SECONDS), OUTBOX_POLL_MS: '25', OUTBOX_BACKOFF_BASE_MS: '20', OUTBOX_BACKOFF_MAX_MS: '200', IOT_MAX_ATTEMPTS: '1' },
    });
    await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(
      new CreatePolicyCommand({ policyName: 'fleet-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
    );
    // Devices are issued three weeks back, so that after the move into their renewal window it is the real time
    // again: AWS IoT (the stand-in, like AWS) refuses certificates that are not yet valid by the wall clock. Their CAs
    // start then too (a certificate never starts before its issuer), but register at the real time, as AWS IoT
    // checks the verification certificate against the wall clock.
    clock.advance(-21 * DAY);
    const root = await post('/v1/authorities', { name: 'Renewal Root', type: 'root', subject: { commonName: 'Renewal Root' } });
    rootPem = root.certificatePem;
    apiCa = await post('/v1/authorities', { name: 'Renewal CA', type: 'intermediate', parentId: root.id, subject: { commonName: 'Renewal CA' } });
    clock.advance(21 * DAY);
    await post(`/v1/authorities/${apiCa.id}/iot-registration`, { deviceRegistration: 'api', policyName: 'fleet-device' });
    clock.advance(-21 * DAY);
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    ssl.cleanup();
  });

  async function post(path: string, body: object, expected = 201): Promise<Body> {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
    assert.equal(res.status, expected, `${path}: ${res.text}`);
    return res.body;
  }

  async function get(path: string): Promise<Body> {
    const res = await t.http().get(path).set(bearer(t.adminKey));
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    return res.body;
  }

  async function issue(authorityId: string, thingName: string, validityDays = 30): Promise<{ cert: Body; key: KeyObject }> {
    const { csrPem, privateKey } = deviceKeyAndCsr(thingName);
    return { cert: await post('/v1/certificates', { authorityId, csr: csrPem, profile: 'device', thingName, validityDays }), key: privateKey };
  }

  /** Renews `cert` (held with `key`) by JWT with a new key, or with `csrPem` when given. */
  async function renew(cert: Body, key: KeyObject, csrPem?: string): Promise<Response> {
    const now = Math.floor(clock.now().getTime() / 1000);
    const token = deviceToken(t, cert.certificatePem, key, { iat: now, exp: now + 120 });
    return t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${token}`).send({ csr: csrPem ?? deviceKeyAndCsr(cert.thingName).csrPem });
  }

  describe('renewal', () => {
    let a: { cert: Body; key: KeyObject };
    let b: { cert: Body; key: KeyObject };
    let c: { cert: Body; key: KeyObject };
    let renewedA: Body;

    before(async () => {
      a = await issue(apiCa.id, 'renew-a');
      b = await issue(apiCa.id, 'renew-b');
      c = await issue(apiCa.id, 'renew-c');
      await eventually('the first certificate is ACTIVE in AWS IoT', () => iot.certificate(a.cert.fingerprint)?.status === 'ACTIVE');
    });

    it('counts the certificates expiring within 30 days per CA in /metrics', async () => {
      const metrics = await t.http().get('/metrics');
      assert.match(metrics.text, new RegExp(`fleetpki_certificates_expiring_30d\\{authority_id="${apiCa.id}"\\} 3\\b`));
    });

    it('is refused before the renewal window (the last third of the lifetime), audited', async () => {
      const res = await renew(a.cert, a.key);
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'RENEWAL_NOT_YET_ALLOWED');
      const audit = await get(`/v1/audit?action=certificate.renewal-refused&targetId=${a.cert.id}`);
      assert.equal(audit.items[0].details.code, 'RENEWAL_NOT_YET_ALLOWED');
      assert.equal(audit.items[0].actor.type, 'device-certificate');
    });

    it('renews inside the window: new key, same thing, lineage; openssl verifies the new certificate', async () => {
      clock.advance(21 * DAY);
      const res = await renew(a.cert, a.key);
      assert.equal(res.status, 201, res.text);
      renewedA = res.body;
      assert.equal(renewedA.thingName, 'renew-a');
      assert.equal(renewedA.replaces, a.cert.id);
      assert.notEqual(renewedA.fingerprint, a.cert.fingerprint);
      const verified = ssl.verify({ rootPem, intermediatesPem: apiCa.certificatePem, leafPem: renewedA.certificatePem });
      assert.ok(verified.ok, verified.output);
      const old = await get(`/v1/certificates/${a.cert.id}`);
      assert.equal(old.status, 'superseded');
      assert.equal(old.replacedBy, renewedA.id);
      const again = await renew(a.cert, a.key);
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'CERTIFICATE_SUPERSEDED');
      // A superseded certificate (in its grace period, still ACTIVE in AWS IoT) does not move to another IoT target:
      // it would be left ACTIVE in one more account (docs/iot-targets.md, "Re-allocation").
      const move = await t.http().post(`/v1/certificates/${a.cert.id}/iot-target`).set(bearer(t.adminKey)).send({ targetId: 'default' });
      assert.equal(move.status, 409, move.text);
      assert.equal(move.body.code, 'CERTIFICATE_SUPERSEDED');
    });

    it('refuses the same key under the default profile, and a revoked certificate', async () => {
      const sameKey = await renew(b.cert, b.key, buildCsr({ commonName: 'renew-b', keyPair: { publicKey: createPublicKey(b.key), privateKey: b.key } }));
      assert.equal(sameKey.status, 422, sameKey.text);
      assert.equal(sameKey.body.code, 'SAME_KEY_NOT_ALLOWED');
      await post(`/v1/certificates/${c.cert.id}/revoke`, { reason: 'keyCompromise' }, 200);
      const revoked = await renew(c.cert, c.key);
      assert.equal(revoked.status, 403);
      assert.equal(revoked.body.code, 'CERTIFICATE_REVOKED');
    });

    it('registers the new certificate on the same thing, and retires the old one after the grace period', async () => {
      await eventually('the renewed certificate is ACTIVE in AWS IoT', () => iot.certificate(renewedA.fingerprint)?.status === 'ACTIVE');
      const newArn = iot.certificateArn(renewedA.fingerprint);
      const oldArn = iot.certificateArn(a.cert.fingerprint);
      assert.ok(iot.principalsOf('renew-a').includes(newArn));
      assert.equal(iot.certificate(a.cert.fingerprint)?.status, 'ACTIVE', 'the old certificate stays usable during the grace period');
      clock.advance((GRACE_SECONDS + 1) * 1000);
      await eventually('the old certificate is INACTIVE in AWS IoT', () => iot.certificate(a.cert.fingerprint)?.status === 'INACTIVE');
      assert.deepEqual(iot.principalsOf('renew-a'), [newArn]);
      assert.ok(!iot.principalsOf('renew-a').includes(oldArn));
      // AWS shows INACTIVE a moment before the job records it.
      await eventually('our record says inactive', async () => (await get(`/v1/certificates/${a.cert.id}`)).iot.status === 'inactive');
    });

    it('refuses a claim certificate as a device certificate', async () => {
      const root = await get(`/v1/authorities/${apiCa.id}`);
      const claims = await post('/v1/authorities', { name: 'RC', type: 'intermediate', parentId: root.parentId, usage: 'claims', subject: { commonName: 'Renewal Claims' } });
      const { claim, station } = await createClaim(t, { claimAuthorityId: claims.id, deviceAuthorityId: apiCa.id, notAfter: new Date(clock.now().getTime() + 7 * DAY).toISOString() });
      const res = await renew({ ...claim.claimCertificate, thingName: 'x' }, station.privateKey);
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'NOT_A_DEVICE_CERTIFICATE');
    });
  });

  describe('a rotation campaign over 500 certificates', () => {
    const devices: { cert: Body; key: KeyObject }[] = [];
    let campaignCa: Body;
    let campaign: Body;

    before(async () => {
      const root = await get(`/v1/authorities/${apiCa.id}`);
      campaignCa = await post('/v1/authorities', { name: 'Campaign CA', type: 'intermediate', parentId: root.parentId, subject: { commonName: 'Campaign CA' } });
      const client = new IoTClient({ region: iot.region, endpoint: iot.endpoint });
      for (let i = 0; i < 500; i += 25) {
        const batch = await Promise.all(Array.from({ length: 25 }, (_, j) => issue(campaignCa.id, `camp-${i + j}`, 365)));
        devices.push(...batch);
        await Promise.all(batch.map((d) => client.send(new CreateThingCommand({ thingName: d.cert.thingName }))));
      }
    });

    it('freezes the matched set, creates the AWS IoT jobs, and counts renewals as they come', async () => {
      campaign = await post('/v1/rotations', {
        selector: { authorityId: campaignCa.id },
        reason: 'campaign CA retires',
        deadline: new Date(clock.now().getTime() + 7 * DAY).toISOString(),
        onDeadline: 'revoke',
        notify: 'iot-job',
      });
      assert.equal(campaign.status, 'open');
      assert.deepEqual(campaign.progress, { total: 500, renewed: 0, pending: 500, revoked: 0, overdue: 0 });
      await eventually('the AWS IoT jobs exist', () => iot.jobs().length >= 5);
      const jobs = iot.jobs().filter((job) => job.jobId.startsWith(`fleet-pki-rotation-${campaign.id}`));
      assert.equal(jobs.length, 5);
      assert.equal(jobs.reduce((n, job) => n + job.targets.length, 0), 500);
      assert.equal((jobs[0].document as Record<string, unknown>).renewUrl, `${t.config.publicBaseUrl}/v1/certificates/renew`);

      // Far outside their renewal window (365 days, just issued), but the campaign covers them.
      for (let i = 0; i < 300; i += 20) {
        const results = await Promise.all(devices.slice(i, i + 20).map((d) => renew(d.cert, d.key)));
        for (const r of results) assert.equal(r.status, 201, r.text);
      }
      const progress = (await get(`/v1/rotations/${campaign.id}`)).progress;
      assert.deepEqual(progress, { total: 500, renewed: 300, pending: 200, revoked: 0, overdue: 0 });
      const pending = await get(`/v1/rotations/${campaign.id}/pending?limit=150`);
      assert.equal(pending.items.length, 150);
      const rest = await get(`/v1/rotations/${campaign.id}/pending?limit=150&cursor=${encodeURIComponent(pending.nextCursor)}`);
      assert.equal(rest.items.length, 50);
      assert.equal(rest.nextCursor, null);
      const pendingIds = new Set([...pending.items, ...rest.items].map((m: Body) => m.certificateId));
      assert.deepEqual(pendingIds, new Set(devices.slice(300).map((d) => d.cert.id)));
    });

    it('revokes the overdue certificates at the deadline', async () => {
      clock.advance(8 * DAY);
      const settled = await get(`/v1/rotations/${campaign.id}`);
      assert.equal(settled.status, 'closed');
      assert.deepEqual(settled.progress, { total: 500, renewed: 300, pending: 0, revoked: 200, overdue: 0 });
      for (const d of [devices[300], devices[499]]) assert.equal((await get(`/v1/certificates/${d.cert.id}`)).status, 'revoked');
      assert.equal((await get(`/v1/certificates/${devices[0].cert.id}`)).status, 'superseded');
      const late = await renew(devices[450].cert, devices[450].key);
      assert.equal(late.status, 403);
      assert.equal(late.body.code, 'CERTIFICATE_REVOKED');
    });
  });
});

describe('issuing-CA rotation', () => {
  const ssl = new OpenSslWorkspace();
  let iot: IotStandIn;
  let t: TestApp;

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', { iot, env: { OUTBOX_POLL_MS: '25', IOT_MAX_ATTEMPTS: '1' } });
    await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(
      new CreatePolicyCommand({ policyName: 'fleet-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
    );
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    ssl.cleanup();
  });

  async function call(method: 'get' | 'post', path: string, body?: object, expected = method === 'get' ? 200 : 201): Promise<Body> {
    const req = t.http()[method](path).set(bearer(t.adminKey));
    const res = await (body ? req.send(body) : req);
    assert.equal(res.status, expected, `${path}: ${res.text}`);
    return res.body;
  }

  it('registers the successor with AWS IoT, stops the predecessor issuing, and keeps its certificates valid and its CRL served', async () => {
    const root = await call('post', '/v1/authorities', { name: 'Rot Root', type: 'root', subject: { commonName: 'Rot Root' } });
    const old = await call('post', '/v1/authorities', { name: 'Rot Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Rot Issuing CA', organization: 'Acme' } });
    await call('post', `/v1/authorities/${old.id}/iot-registration`, { deviceRegistration: 'api', policyName: 'fleet-device' });
    const claims = await call('post', '/v1/authorities', { name: 'Rot Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Rot Claims' } });
    const { claim } = await createClaim(t, { claimAuthorityId: claims.id, deviceAuthorityId: old.id });
    const keep = deviceKeyAndCsr('rot-1');
    const d1 = await call('post', '/v1/certificates', { authorityId: old.id, csr: keep.csrPem, profile: 'device', thingName: 'rot-1' });
    const d2 = await call('post', '/v1/certificates', { authorityId: old.id, csr: deviceKeyAndCsr('rot-2').csrPem, profile: 'device', thingName: 'rot-2' });

    const rotated = await call('post', `/v1/authorities/${old.id}/rotate`, { campaign: { reason: 'key rollover', deadline: new Date(Date.now() + 7 * DAY).toISOString(), onDeadline: 'report' } });
    assert.equal(rotated.predecessor.status, 'retiring');
    assert.equal(rotated.predecessor.successorId, rotated.successor.id);
    assert.equal(rotated.successor.status, 'active');
    assert.equal(rotated.successor.parentId, root.id);
    assert.equal(rotated.successor.subject, old.subject);
    assert.notEqual(rotated.successor.fingerprint, old.fingerprint);
    assert.equal(rotated.campaign.progress.total, 2);
    assert.equal(iot.caCertificate(rotated.successor.fingerprint)?.status, 'ACTIVE', 'the successor is registered with AWS IoT');
    assert.equal((await call('get', `/v1/authorities/${rotated.successor.id}/iot-registration`)).deviceRegistration, 'api');
    assert.equal((await call('get', `/v1/claims/${claim.id}`)).deviceAuthorityId, rotated.successor.id, 'claims issue from the successor');

    const refused = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: old.id, csr: deviceKeyAndCsr('rot-3').csrPem, profile: 'device', thingName: 'rot-3' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'AUTHORITY_NOT_ACTIVE');

    const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: old.certificatePem, leafPem: d1.certificatePem });
    assert.ok(verified.ok, verified.output);

    // The campaign covers d1: it renews now, under the successor.
    const now = Math.floor(Date.now() / 1000);
    const renewed = await t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${deviceToken(t, d1.certificatePem, keep.privateKey, { iat: now, exp: now + 120 })}`).send({ csr: deviceKeyAndCsr('rot-1').csrPem });
    assert.equal(renewed.status, 201, renewed.text);
    assert.equal(renewed.body.authorityId, rotated.successor.id);
    const renewedOk = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: rotated.successor.certificatePem, leafPem: renewed.body.certificatePem });
    assert.ok(renewedOk.ok, renewedOk.output);

    await call('post', `/v1/certificates/${d2.id}/revoke`, { reason: 'keyCompromise' }, 200);
    const crl = await t.http().get(`/v1/authorities/${old.id}/crl`).buffer(true).parse(binaryBody);
    assert.equal(crl.status, 200);
    const crlText = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('retiring.crl', crl.body as Buffer), '-noout', '-text']).output;
    assert.match(crlText, new RegExp(`Serial Number: ${d2.serial.toUpperCase()}`));
    // …and answers OCSP for what it issued (openssl runs beside the in-process service, so asynchronously).
    const files = { old: ssl.file('rot-old.pem', old.certificatePem), chain: ssl.file('rot-chain.pem', old.certificatePem + root.certificatePem), d1: ssl.file('rot-d1.pem', d1.certificatePem), d2: ssl.file('rot-d2.pem', d2.certificatePem) };
    const ocsp = await new Promise<string>((resolve) =>
      execFile('openssl', ['ocsp', '-issuer', files.old, '-cert', files.d1, '-cert', files.d2, '-url', `${t.baseUrl}/ocsp`, '-CAfile', files.chain], { cwd: ssl.dir }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`)),
    );
    assert.match(ocsp, /Response verify OK/);
    assert.match(ocsp, /rot-d1\.pem: good/);
    assert.match(ocsp, /rot-d2\.pem: revoked/);
    const again = await t.http().post(`/v1/authorities/${old.id}/rotate`).set(bearer(t.adminKey)).send({});
    assert.equal(again.status, 409);
  });
});

describe('renewal by mutual TLS', () => {
  const ssl = new OpenSslWorkspace();
  const clock = new ManualClock();
  let t: TestApp;
  let serverPem: string;

  before(async () => {
    const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    assert.equal(made.status, 0, made.output);
    serverPem = ssl.run(['x509', '-in', 'server.pem']).output;
    t = await startTestApp('sqlite', { clock, env: { TLS_CERT_FILE: ssl.file('server.pem'), TLS_KEY_FILE: ssl.file('server.key') } });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  function request(path: string, body: object, options: { client?: { cert: string; key: string }; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Body }> {
    return postJsonOverTls(t.baseUrl, path, body, { serverCaPem: serverPem, ...options });
  }

  it('renews a device certificate presented as the TLS client certificate, inside its window', async () => {
    const admin = { headers: bearer(t.adminKey) };
    // Issued 25 days back, by CAs that exist from then on (a certificate never starts before its issuer).
    clock.advance(-25 * DAY);
    const root = (await request('/v1/authorities', { name: 'M', type: 'root', subject: { commonName: 'mTLS Renewal Root' } }, admin)).body;
    const ca = (await request('/v1/authorities', { name: 'M', type: 'intermediate', parentId: root.id, subject: { commonName: 'mTLS Renewal CA' } }, admin)).body;
    const device = ssl.newCsr('ec:P-256', '/CN=tls-dev');
    const issued = await request('/v1/certificates', { authorityId: ca.id, csr: device.csrPem, profile: 'device', thingName: 'tls-dev', validityDays: 30 }, admin);
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const client = { cert: issued.body.certificatePem, key: fs.readFileSync(device.keyFile, 'utf8') };

    const early = await request('/v1/certificates/renew', { csr: ssl.newCsr('ec:P-256', '/CN=tls-dev').csrPem }, { client });
    assert.equal(early.status, 403);
    assert.equal(early.body.code, 'RENEWAL_NOT_YET_ALLOWED');
    clock.advance(25 * DAY);
    const renewed = await request('/v1/certificates/renew', { csr: ssl.newCsr('ec:P-256', '/CN=tls-dev').csrPem }, { client });
    assert.equal(renewed.status, 201, JSON.stringify(renewed.body));
    assert.equal(renewed.body.replaces, issued.body.id);
    assert.equal(renewed.body.thingName, 'tls-dev');
    const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: ca.certificatePem, leafPem: renewed.body.certificatePem });
    assert.ok(verified.ok, verified.output);
  });
});

/**
 * The operator's renewal switches: RENEWAL_AFTER_EXPIRY_DAYS lets an expired certificate renew itself for a bounded
 * time after expiry, RENEWAL_SAME_KEY_PROFILES lets it keep its key. Off by default: the same requests are refused.
 */
describe('renewal switches (after expiry, same key)', () => {
  const ssl = new OpenSslWorkspace();
  const apps: Record<'plain' | 'switched', { t: TestApp; clock: ManualClock; rootPem: string; caPem: string; caId: string }> = {} as never;

  before(async () => {
    for (const [name, env] of [
      ['plain', {}],
      ['switched', { RENEWAL_AFTER_EXPIRY_DAYS: 'device=30', RENEWAL_SAME_KEY_PROFILES: 'device' }],
    ] as const) {
      const clock = new ManualClock();
      // Everything starts 50 days ago, so that the certificates below have expired (or are late in life) by now.
      clock.advance(-50 * DAY);
      const t = await startTestApp('sqlite', { clock, env });
      const admin = (path: string, body: object) => t.http().post(path).set(bearer(t.adminKey)).send(body);
      const root = (await admin('/v1/authorities', { name: 'S', type: 'root', subject: { commonName: `Switch Root ${name}` } })).body;
      const ca = (await admin('/v1/authorities', { name: 'S', type: 'intermediate', parentId: root.id, subject: { commonName: `Switch CA ${name}` } })).body;
      apps[name] = { t, clock, rootPem: root.certificatePem, caPem: ca.certificatePem, caId: ca.id };
    }
  });
  after(async () => {
    for (const app of Object.values(apps)) await app.t.close();
    ssl.cleanup();
  });

  /** A device certificate issued 50 days ago with the given validity, and its key. */
  async function issuedLongAgo(app: (typeof apps)['plain'], thingName: string, validityDays: number): Promise<{ cert: Body; key: KeyObject }> {
    const { csrPem, privateKey } = deviceKeyAndCsr(thingName);
    const res = await app.t.http().post('/v1/certificates').set(bearer(app.t.adminKey)).send({ authorityId: app.caId, csr: csrPem, profile: 'device', thingName, validityDays });
    assert.equal(res.status, 201, res.text);
    return { cert: res.body, key: privateKey };
  }

  function renewNow(app: (typeof apps)['plain'], cert: Body, key: KeyObject, csrPem: string): Promise<Response> {
    const now = Math.floor(app.clock.now().getTime() / 1000);
    const token = deviceToken(app.t, cert.certificatePem, key, { iat: now, exp: now + 120 });
    return app.t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${token}`).send({ csr: csrPem });
  }

  const sameKeyCsr = (thingName: string, key: KeyObject) => buildCsr({ commonName: thingName, keyPair: { publicKey: createPublicKey(key), privateKey: key } });

  it('by default, refuses an expired certificate (audited) and the same key', async () => {
    const app = apps.plain;
    const expired = await issuedLongAgo(app, 'plain-expired', 30);
    const late = await issuedLongAgo(app, 'plain-late', 60);
    app.clock.advance(50 * DAY);
    const res = await renewNow(app, expired.cert, expired.key, deviceKeyAndCsr('plain-expired').csrPem);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.body.code, 'CERTIFICATE_EXPIRED');
    assert.match(res.body.detail, /does not renew after expiry/);
    const audit = await app.t.http().get(`/v1/audit?action=certificate.renewal-refused&targetId=${expired.cert.id}`).set(bearer(app.t.adminKey));
    assert.equal(audit.body.items[0].details.code, 'CERTIFICATE_EXPIRED');
    const sameKey = await renewNow(app, late.cert, late.key, sameKeyCsr('plain-late', late.key));
    assert.equal(sameKey.status, 422, sameKey.text);
    assert.equal(sameKey.body.code, 'SAME_KEY_NOT_ALLOWED');
  });

  it('with the switches, renews up to 30 days after expiry (not later) and keeps the key when asked; openssl verifies', async () => {
    const app = apps.switched;
    const expired20 = await issuedLongAgo(app, 'expired-20-days', 30);
    const expired40 = await issuedLongAgo(app, 'expired-40-days', 10);
    const late = await issuedLongAgo(app, 'same-key', 60);
    app.clock.advance(50 * DAY);

    const renewed = await renewNow(app, expired20.cert, expired20.key, deviceKeyAndCsr('expired-20-days').csrPem);
    assert.equal(renewed.status, 201, renewed.text);
    assert.equal(renewed.body.replaces, expired20.cert.id);
    assert.ok(new Date(renewed.body.notAfter) > app.clock.now());
    const verified = ssl.verify({ rootPem: app.rootPem, intermediatesPem: app.caPem, leafPem: renewed.body.certificatePem });
    assert.ok(verified.ok, verified.output);

    const tooLate = await renewNow(app, expired40.cert, expired40.key, deviceKeyAndCsr('expired-40-days').csrPem);
    assert.equal(tooLate.status, 403, tooLate.text);
    assert.equal(tooLate.body.code, 'CERTIFICATE_EXPIRED');
    assert.match(tooLate.body.detail, /at most 30 days after expiry/);

    const sameKey = await renewNow(app, late.cert, late.key, sameKeyCsr('same-key', late.key));
    assert.equal(sameKey.status, 201, sameKey.text);
    const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });
    assert.deepEqual(spki(new X509Certificate(sameKey.body.certificatePem).publicKey), spki(createPublicKey(late.key)), 'the renewed certificate certifies the same key');
    assert.notEqual(sameKey.body.fingerprint, late.cert.fingerprint);
  });
});
