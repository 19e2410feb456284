import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, deviceToken, stationToken } from '../support/station';
import { bearer, drivers, ManualClock, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];
const DAY = 86_400_000;

/**
 * Every route that takes a CSR from a caller — issue, factory exchange, renewal, a claim certificate's CSR — goes
 * through the one parser, which takes exactly one CERTIFICATE REQUEST block with only whitespace around it. Before,
 * a second block or trailing text was ignored and the first block certified.
 */
for (const { driver, skip } of drivers())
describe(`CSR PEM framing on every CSR route (${driver})`, { skip }, () => {
  const clock = new ManualClock();
  const ssl = new OpenSslWorkspace();
  let t: TestApp;
  let deviceCa: Body;
  let claimCa: Body;

  before(async () => {
    t = await startTestApp(driver, { clock });
    const root = await admin('/v1/authorities', { name: 'PEM Root', type: 'root', subject: { commonName: 'PEM Root' } });
    deviceCa = await admin('/v1/authorities', { name: 'PEM Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'PEM Devices CA' } });
    claimCa = await admin('/v1/authorities', { name: 'PEM Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'PEM Claims CA' } });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function admin(path: string, body: object): Promise<Body> {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
    assert.equal(res.status, 201, `${path}: ${res.text}`);
    return res.body;
  }

  async function certificateCount(): Promise<number> {
    const res = await t.http().get('/v1/certificates?limit=500').set(bearer(t.adminKey));
    return res.body.items.length;
  }

  /** The malformed framings, each built around a CSR that on its own would be certified. */
  function framings(cn: string): { name: string; csr: string; detail: RegExp }[] {
    const good = ssl.newCsr('ec:P-256', `/CN=${cn}`).csrPem;
    const other = ssl.newCsr('ec:P-256', `/CN=${cn}`).csrPem;
    return [
      { name: 'two CSR blocks', csr: good + other, detail: /^csr holds more than one PEM block; send exactly one$/ },
      { name: 'trailing text', csr: `${good}# made on line 3\n`, detail: /^csr has text after its PEM block; only whitespace may surround it$/ },
      { name: 'leading text', csr: `Certificate Request:\n${good}`, detail: /^csr has text before its PEM block/ },
    ];
  }

  function expectRefused(res: Response, detail: RegExp, what: string): void {
    assert.equal(res.status, 400, `${what}: ${res.text}`);
    assert.match(res.headers['content-type'], /^application\/problem\+json/);
    assert.equal(res.body.code, 'INVALID_CSR', what);
    assert.match(res.body.detail, detail, what);
  }

  it('POST /v1/certificates refuses them and issues nothing', async () => {
    const before = await certificateCount();
    for (const { name, csr, detail } of framings('pem-issue')) {
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: deviceCa.id, csr, profile: 'device', thingName: 'pem-issue' });
      expectRefused(res, detail, name);
    }
    assert.equal(await certificateCount(), before);
    const ok = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: deviceCa.id, csr: `\n  ${ssl.newCsr('ec:P-256', '/CN=pem-issue').csrPem}\r\n\n`, profile: 'device' });
    assert.equal(ok.status, 201, `one block with whitespace around it is fine: ${ok.text}`);
  });

  it('POST /v1/claims refuses them as the claim certificate’s CSR', async () => {
    for (const { name, csr, detail } of framings('station-1')) {
      const res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send({
        name: 'PEM claim', factory: 'F', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1,
        notAfter: new Date(clock.now().getTime() + DAY).toISOString(), thingNameTemplate: 'pem-{serial}', claimCertificate: { csr },
      });
      expectRefused(res, detail, name);
    }
    const claims = await t.http().get('/v1/claims').set(bearer(t.adminKey));
    assert.equal(claims.body.items.length, 0, 'no claim was made');
  });

  it('POST /v1/provisioning/exchange refuses them and spends no quota', async () => {
    const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1 });
    for (const { name, csr, detail } of framings('SN-PEM-1')) {
      const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: 'SN-PEM-1', csr });
      expectRefused(res, detail, name);
    }
    const after = await t.http().get(`/v1/claims/${claim.id}`).set(bearer(t.adminKey));
    assert.equal(after.body.used, 0);
  });

  it('POST /v1/certificates/renew refuses them and leaves the certificate active', async () => {
    const { csrPem, keyFile } = ssl.newCsr('ec:P-256', '/CN=pem-renew');
    const device = await admin('/v1/certificates', { authorityId: deviceCa.id, csr: csrPem, profile: 'device', thingName: 'pem-renew', validityDays: 3 });
    clock.advance(2.5 * DAY); // inside the renewal window (the last third)
    const key = createPrivateKey(fs.readFileSync(keyFile));
    for (const { name, csr, detail } of framings('pem-renew')) {
      const now = Math.floor(clock.now().getTime() / 1000);
      const token = deviceToken(t, device.certificatePem, key, { iat: now, exp: now + 120 });
      const res = await t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${token}`).send({ csr });
      expectRefused(res, detail, name);
    }
    const still = await t.http().get(`/v1/certificates/${device.id}`).set(bearer(t.adminKey));
    assert.equal(still.body.status, 'active');
  });
});
