import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { OID } from '../../src/pki/oids';
import { HOSTILE_SERIAL_PATTERNS } from '../support/hostile-patterns';
import { IotStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, stationToken, StationCredentials } from '../support/station';
import type { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { bearer, binaryBody, drivers, ManualClock, startTestApp, TestApp } from '../support/test-app';
import { postJsonOverTls } from '../support/https-client';

/** A JSON answer, as supertest gives it. */
type Body = Response['body'];

/**
 * Factory claims end to end: claim and claim certificate (generated key and CSR), exchange by JWT and by mutual
 * TLS, retries, every refusal with its code (audited only once the claim certificate verified), the quota under
 * concurrency, allow-lists of 100,000 serials, and revocation with cascade — checked with openssl.
 */
for (const { driver, skip } of drivers())
describe(`factory claims on ${driver}`, { skip }, () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  let rootPem: string;
  let claimCa: { id: string; chainPem: string };
  let deviceCa: { id: string; chainPem: string; certificatePem: string };

  before(async () => {
    t = await startTestApp(driver);
    const root = await admin('post', '/v1/authorities', { name: 'Factory Root', type: 'root', subject: { commonName: 'Factory Root' } });
    rootPem = root.certificatePem;
    claimCa = await admin('post', '/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Factory Claims CA' } });
    deviceCa = await admin('post', '/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Factory Devices CA' } });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function admin(method: 'post' | 'get' | 'put', path: string, body?: unknown, expected = [200, 201]): Promise<Body> {
    const req = t.http()[method](path).set(bearer(t.adminKey));
    const res = await (body === undefined ? req : req.send(body as object));
    assert.ok(expected.includes(res.status), `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  function exchange(station: StationCredentials | null, body: object, headers: Record<string, string> = {}, token?: string) {
    const req = t.http().post('/v1/provisioning/exchange').set(headers);
    const auth = token ?? (station ? stationToken(t, station) : undefined);
    return (auth ? req.set('Authorization', `Bearer ${auth}`) : req).send(body);
  }

  function deviceCsr(serial: string, subject = `/CN=${serial}`) {
    return ssl.newCsr('ec:P-256', subject);
  }

  function verifyDevice(certificatePem: string, chainPem: string) {
    const intermediates = chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0];
    return ssl.verify({ rootPem, intermediatesPem: intermediates, leafPem: certificatePem });
  }

  async function auditCount(): Promise<number> {
    return (await admin('get', '/v1/audit/verify')).checked;
  }

  async function refusals(claimId: string): Promise<{ code: string; deviceSerial: string }[]> {
    const page = await admin('get', `/v1/audit?action=provisioning.refused&targetId=${claimId}&limit=500`);
    return page.items.map((e: Body) => e.details);
  }

  describe('claim creation', () => {
    it('makes a claim certificate with a generated key: clientAuth, the claim-only policy, chaining to the claim CA', async () => {
      const { claim } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 5 });
      assert.equal(claim.status, 'active');
      assert.equal(claim.maxDevices, 5);
      assert.equal(claim.used, 0);
      assert.equal(claim.remaining, 5);
      assert.equal(claim.allowlistSize, null);
      assert.match(claim.claimCertificate.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
      const text = ssl.text(claim.claimCertificate.certificatePem);
      assert.match(text, /TLS Web Client Authentication/);
      assert.match(text, new RegExp(`Policy: ${OID.fleetPkiClaimPolicy.replace(/\./g, '\\.')}`));
      const verified = ssl.verify({ rootPem, intermediatesPem: claimCa.chainPem, leafPem: claim.claimCertificate.certificatePem });
      assert.ok(verified.ok, verified.output);
      // The key is shown once: nothing that reads the claim later carries it.
      const again = await admin('get', `/v1/claims/${claim.id}`);
      assert.equal(JSON.stringify(again).includes('PRIVATE KEY'), false);
      const certificate = await admin('get', `/v1/certificates/${claim.claimCertificateId}`);
      assert.equal(certificate.profile, 'claim');
      assert.equal(JSON.stringify(certificate).includes('PRIVATE KEY'), false);
    });

    it('certifies a factory-made key from a CSR and returns no key', async () => {
      const csr = ssl.newCsr('ec:P-384', '/CN=station-7');
      const claim = await admin('post', '/v1/claims', {
        name: 'CSR claim', factory: 'F', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1,
        notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'csr-{serial}', claimCertificate: { csr: csr.csrPem },
      });
      assert.equal(claim.claimCertificate.privateKeyPem, null);
      assert.match(ssl.text(claim.claimCertificate.certificatePem), /NIST CURVE: P-384/);
    });

    it('refuses a device CA as claim CA, a claim CA as device CA, and the claim profile on POST /v1/certificates', async () => {
      const base = { name: 'x', factory: 'F', maxDevices: 1, notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'x-{serial}', claimCertificate: { generateKey: true } };
      let res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send({ ...base, claimAuthorityId: deviceCa.id, deviceAuthorityId: deviceCa.id });
      assert.equal(res.status, 422);
      assert.equal(res.body.code, 'AUTHORITY_USAGE_MISMATCH');
      res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send({ ...base, claimAuthorityId: claimCa.id, deviceAuthorityId: claimCa.id });
      assert.equal(res.body.code, 'AUTHORITY_USAGE_MISMATCH');
      res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: claimCa.id, csr: deviceCsr('x1').csrPem, profile: 'device' });
      assert.equal(res.body.code, 'AUTHORITY_USAGE_MISMATCH');
      res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: deviceCa.id, csr: deviceCsr('x2').csrPem, profile: 'claim' });
      assert.equal(res.body.code, 'PROFILE_NOT_FOUND');
    });

    it('refuses bad templates, unsafe patterns, both or neither key source', async () => {
      const base = { name: 'x', factory: 'F', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1, notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'x-{serial}', claimCertificate: { generateKey: true } };
      const cases: [object, number, string][] = [
        [{ thingNameTemplate: 'no-serial' }, 422, 'INVALID_CLAIM'],
        [{ thingNameTemplate: 'bad name {serial}' }, 422, 'INVALID_CLAIM'],
        [{ serialPattern: '(?=SN)\\w+' }, 422, 'INVALID_CLAIM'],
        [{ serialPattern: '(SN)\\1' }, 422, 'INVALID_CLAIM'],
        [{ serialPattern: '[' }, 422, 'INVALID_CLAIM'],
        [{ notAfter: new Date(Date.now() - 1000).toISOString() }, 422, 'INVALID_CLAIM'],
        [{ claimCertificate: {} }, 400, 'VALIDATION_FAILED'],
        [{ claimCertificate: { generateKey: true, csr: deviceCsr('c').csrPem } }, 400, 'VALIDATION_FAILED'],
        [{ maxDevices: 0 }, 400, 'VALIDATION_FAILED'],
        [{ iot: { attributes: { 'bad name': 'x' } } }, 400, 'VALIDATION_FAILED'],
      ];
      for (const [change, status, code] of cases) {
        const res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send({ ...base, ...change });
        assert.equal(res.status, status, `${JSON.stringify(change)}: ${res.text}`);
        assert.equal(res.body.code, code, JSON.stringify(change));
      }
    });
  });

  describe('exchange by JWT', () => {
    let claim: Body;
    let station: StationCredentials;
    before(async () => {
      ({ claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 5, serialPattern: 'SN[0-9]{4}' }));
    });

    it('issues a device certificate that openssl verifies, CN = the thing name, and counts it on the claim', async () => {
      const csr = deviceCsr('SN0001');
      const res = await exchange(station, { deviceSerial: 'SN0001', csr: csr.csrPem });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.thingName, 'acme-SN0001');
      assert.equal(res.body.deviceSerial, 'SN0001');
      assert.equal(res.body.claimId, claim.id);
      assert.match(res.body.certificateId, /^[0-9a-f]{64}$/);
      assert.deepEqual(res.body.iot, { status: 'none', targetId: 'default', accountId: null, region: '' });
      const verified = verifyDevice(res.body.certificatePem, res.body.chainPem);
      assert.ok(verified.ok, verified.output);
      const text = ssl.text(res.body.certificatePem);
      assert.match(text, /Subject: CN\s?=\s?acme-SN0001/);
      assert.doesNotMatch(text, new RegExp(OID.fleetPkiClaimPolicy.replace(/\./g, '\\.')), 'a device certificate is not a claim certificate');
      const after = await admin('get', `/v1/claims/${claim.id}`);
      assert.equal(after.used, 1);
      assert.equal(after.remaining, 4);
      assert.ok(after.lastExchangeAt);
      const found = await admin('get', `/v1/certificates?claimId=${claim.id}`);
      assert.deepEqual(found.items.map((c: Body) => c.id), [res.body.id]);
      const events = await admin('get', `/v1/audit?action=certificate.issued&targetId=${res.body.id}`);
      assert.equal(events.items[0].actor.type, 'claim-certificate');
      assert.equal(events.items[0].details.claimId, claim.id);
      assert.equal(events.items[0].details.deviceSerial, 'SN0001');
      assert.equal(events.items[0].details.station.method, 'jwt');
      assert.equal(events.items[0].details.station.name, 'test-station-1');
    });

    it('answers retries with the same certificate: same Idempotency-Key, or same serial and key', async () => {
      const csr = deviceCsr('SN0002');
      const first = await exchange(station, { deviceSerial: 'SN0002', csr: csr.csrPem }, { 'Idempotency-Key': 'retry-SN0002' });
      assert.equal(first.status, 201, first.text);
      const byKey = await exchange(station, { deviceSerial: 'SN0002', csr: csr.csrPem }, { 'Idempotency-Key': 'retry-SN0002' });
      assert.equal(byKey.status, 200, byKey.text);
      assert.equal(byKey.body.id, first.body.id);
      assert.equal(byKey.body.certificatePem, first.body.certificatePem);
      const sameKey = await exchange(station, { deviceSerial: 'SN0002', csr: deviceCsrFromKey(csr.keyFile, 'SN0002') });
      assert.equal(sameKey.status, 200, sameKey.text);
      assert.equal(sameKey.body.id, first.body.id);
      const otherBody = await exchange(station, { deviceSerial: 'SN0003', csr: csr.csrPem }, { 'Idempotency-Key': 'retry-SN0002' });
      assert.equal(otherBody.status, 422);
      assert.equal(otherBody.body.code, 'IDEMPOTENCY_KEY_REUSED');
      const otherKey = await exchange(station, { deviceSerial: 'SN0002', csr: deviceCsr('SN0002').csrPem });
      assert.equal(otherKey.status, 409);
      assert.equal(otherKey.body.code, 'DEVICE_ALREADY_PROVISIONED');
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).used, 2, 'retries use no quota');
    });

    it('refuses tokens that are replayed, expired, for another audience or signed by another key — 401, not audited', async () => {
      const before = await auditCount();
      const body = { deviceSerial: 'SN0009', csr: deviceCsr('SN0009').csrPem };
      const token = stationToken(t, station);
      assert.equal((await exchange(null, body, {}, token)).status, 201);
      const cases: [string, string][] = [
        [token, 'TOKEN_REPLAYED'],
        [stationToken(t, station, { exp: Math.floor(Date.now() / 1000) - 120 }), 'TOKEN_EXPIRED'],
        [stationToken(t, station, { exp: Math.floor(Date.now() / 1000) + 3600 }), 'TOKEN_INVALID'],
        [stationToken(t, station, { aud: 'https://elsewhere.example/v1/provisioning/exchange' }), 'TOKEN_AUDIENCE_MISMATCH'],
        [stationToken(t, station, {}, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), 'TOKEN_SIGNATURE_INVALID'],
        [stationToken(t, station, { jti: undefined }), 'TOKEN_INVALID'],
        ['not.a.token', 'TOKEN_INVALID'],
      ];
      for (const [bad, code] of cases) {
        const res = await exchange(null, { ...body, deviceSerial: 'SN0010' }, {}, bad);
        assert.equal(res.status, 401, `${code}: ${res.text}`);
        assert.equal(res.body.code, code);
        assert.match(res.headers['content-type'], /application\/problem\+json/);
      }
      const none = await t.http().post('/v1/provisioning/exchange').send(body);
      assert.equal(none.status, 401);
      assert.equal(none.body.code, 'UNAUTHENTICATED');
      assert.equal(await auditCount(), before + 1, 'only the successful exchange was audited');
      const metrics = await t.http().get('/metrics');
      assert.match(metrics.text, /fleetpki_station_auth_failures_total\{method="jwt",reason="TOKEN_REPLAYED"\} 1/);
    });

    it('refuses a claim certificate from a non-claim CA and a device certificate used as a claim certificate', async () => {
      // A CA of someone else's, whose certificate even carries our claim policy.
      ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue-ca.key', '-out', 'rogue-ca.pem', '-subj', '/CN=Rogue CA', '-days', '2']);
      ssl.run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.csr', '-subj', '/CN=rogue']);
      ssl.file('rogue.ext', `certificatePolicies=${OID.fleetPkiClaimPolicy}\nextendedKeyUsage=clientAuth\n`);
      const made = ssl.run(['x509', '-req', '-in', 'rogue.csr', '-CA', 'rogue-ca.pem', '-CAkey', 'rogue-ca.key', '-CAcreateserial', '-out', 'rogue.pem', '-days', '1', '-extfile', 'rogue.ext']);
      assert.equal(made.status, 0, made.output);
      const rogue: StationCredentials = { claimId: '', certificatePem: read('rogue.pem'), privateKey: keyOf(ssl.file('rogue.key')), alg: 'ES256' };
      let res = await exchange(rogue, { deviceSerial: 'SN0011', csr: deviceCsr('SN0011').csrPem });
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'CLAIM_CERTIFICATE_UNTRUSTED');

      const csr = deviceCsr('SN0012');
      const issued = await exchange(station, { deviceSerial: 'SN0012', csr: csr.csrPem });
      assert.equal(issued.status, 201);
      const device: StationCredentials = { claimId: '', certificatePem: issued.body.certificatePem, privateKey: keyOf(csr.keyFile), alg: 'ES256' };
      res = await exchange(device, { deviceSerial: 'SN0013', csr: deviceCsr('SN0013').csrPem });
      assert.equal(res.status, 401);
      assert.equal(res.body.code, 'NOT_A_CLAIM_CERTIFICATE');
    });

    it('refuses serials outside the pattern — audited with the claim and station', async () => {
      const res = await exchange(station, { deviceSerial: 'XX0001', csr: deviceCsr('XX0001').csrPem });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'SERIAL_NOT_ALLOWED');
      const audited = (await refusals(claim.id)).find((r) => r.deviceSerial === 'XX0001');
      assert.equal(audited?.code, 'SERIAL_NOT_ALLOWED');
    });

    it('refuses a CSR that names another device', async () => {
      const res = await exchange(station, { deviceSerial: 'SN0020', csr: deviceCsr('SN0020', '/CN=SN9999').csrPem });
      assert.equal(res.status, 422);
      assert.equal(res.body.code, 'INVALID_SUBJECT');
    });

    it('stops at maxDevices with CLAIM_QUOTA_EXHAUSTED', async () => {
      const { claim: small, station: smallStation } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1 });
      assert.equal((await exchange(smallStation, { deviceSerial: 'Q1', csr: deviceCsr('Q1').csrPem })).status, 201);
      const res = await exchange(smallStation, { deviceSerial: 'Q2', csr: deviceCsr('Q2').csrPem });
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'CLAIM_QUOTA_EXHAUSTED');
      assert.equal((await refusals(small.id))[0].code, 'CLAIM_QUOTA_EXHAUSTED');
    });

    it('refuses before the window opens (audited) and after it closes, when the claim certificate has ended with it', async () => {
      const { claim: later, station: laterStation } = await createClaim(t, {
        claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, notBefore: new Date(Date.now() + 3600_000).toISOString(),
      });
      const res = await exchange(laterStation, { deviceSerial: 'W1', csr: deviceCsr('W1').csrPem });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'CLAIM_NOT_YET_VALID');
      assert.equal((await refusals(later.id))[0].code, 'CLAIM_NOT_YET_VALID');
    });
  });

  describe('serial patterns', () => {
    /** One refused exchange of `serial` (a fresh token), timed. */
    async function timedRefusal(station: StationCredentials, serial: string, csr: string, pattern: string): Promise<number> {
      const started = performance.now();
      const refused = await exchange(station, { deviceSerial: serial, csr });
      const ms = performance.now() - started;
      assert.equal(refused.status, 403, `${pattern}: ${refused.text}`);
      assert.equal(refused.body.code, 'SERIAL_NOT_ALLOWED');
      assert.match(refused.body.detail, /does not match the claim's serial pattern/);
      return ms;
    }

    it('answers hostile patterns in linear time: a 64-character serial, matching or not, never stalls the service', async (ctx) => {
      // The same refusal under a trivial pattern: what authentication, the audit event and the HTTP round trip cost.
      const control = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1, serialPattern: 'SN[0-9]{4}', thingNameTemplate: '{serial}' });
      const controlSerial = `SN${'1'.repeat(62)}`;
      const controlCsr = deviceCsr(controlSerial).csrPem;
      const times: { pattern: string; refusedMs: number; controlMs: number; issuedMs: number; stallMs: number }[] = [];
      for (const { pattern, matching, nonMatching } of HOSTILE_SERIAL_PATTERNS) {
        const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1, serialPattern: pattern, thingNameTemplate: '{serial}' });
        assert.equal(claim.serialPattern, pattern);
        const refusedCsr = deviceCsr(nonMatching).csrPem;
        const issuedCsr = deviceCsr(matching).csrPem;
        // How long the event loop went without turning while the exchanges ran (reported; other suites share it).
        const stall = monitorEventLoopDelay({ resolution: 1 });
        stall.enable();
        // Hostile and control refusals alternate, and the fastest of each counts: a busy machine slows both alike.
        let refusedMs = Infinity;
        let controlMs = Infinity;
        for (let i = 0; i < 4; i++) {
          controlMs = Math.min(controlMs, await timedRefusal(control.station, controlSerial, controlCsr, 'SN[0-9]{4}'));
          refusedMs = Math.min(refusedMs, await timedRefusal(station, nonMatching, refusedCsr, pattern));
        }
        const started = performance.now();
        const issued = await exchange(station, { deviceSerial: matching, csr: issuedCsr });
        const issuedMs = performance.now() - started;
        stall.disable();
        assert.equal(issued.status, 201, `${pattern}: ${issued.text}`);
        assert.equal(issued.body.thingName, matching);
        times.push({ pattern, refusedMs, controlMs, issuedMs, stallMs: stall.max / 1e6 });
      }
      const worst = (key: 'refusedMs' | 'issuedMs' | 'stallMs') => times.reduce((a, b) => (b[key] > a[key] ? b : a));
      const overhead = times.map((x) => ({ ...x, over: x.refusedMs - x.controlMs })).reduce((a, b) => (b.over > a.over ? b : a));
      ctx.diagnostic(`refused exchange: worst ${worst('refusedMs').refusedMs.toFixed(1)} ms (${worst('refusedMs').pattern}); ` +
        `largest excess over the SN[0-9]{4} control ${overhead.over.toFixed(1)} ms (${overhead.pattern}); ` +
        `worst issued exchange ${worst('issuedMs').issuedMs.toFixed(1)} ms (${worst('issuedMs').pattern}); longest event-loop stall ${worst('stallMs').stallMs.toFixed(1)} ms`);
      for (const { pattern, refusedMs, controlMs, issuedMs } of times) {
        // The match is the only difference from the control. A backtracking RegExp needed ~4 s at 27 characters,
        // doubling with each one: at 64 it would never answer.
        assert.ok(refusedMs - controlMs < 50, `${pattern}: refused in ${refusedMs.toFixed(1)} ms, ${(refusedMs - controlMs).toFixed(1)} ms over the control`);
        assert.ok(issuedMs < 2000, `${pattern}: issued in ${issuedMs.toFixed(1)} ms`);
      }
    });

    it('fails closed on a stored pattern RE2 cannot compile: every exchange refused, nothing issued', async () => {
      const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 1, serialPattern: 'SN[0-9]+' });
      // Lookahead: the old validation refused it too, so only a hand-edited database could hold it.
      await t.app.get(DataSource).query(`UPDATE claims SET serial_pattern = '(?=SN)SN[0-9]+' WHERE id = '${claim.id}'`);
      const res = await exchange(station, { deviceSerial: 'SN1', csr: deviceCsr('SN1').csrPem });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'INVALID_CLAIM');
      assert.equal(res.body.detail, "the claim's serial pattern is unusable; an administrator must fix it");
      const again = await exchange(station, { deviceSerial: 'SN2', csr: deviceCsr('SN2').csrPem });
      assert.equal(again.status, 422, again.text);
      assert.equal(again.body.detail, res.body.detail);
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).used, 0);
    });
  });

  describe('concurrency', () => {
    it('issues exactly maxDevices certificates when 50 stations race for 10 slots', async () => {
      const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 10 });
      const csrs = Array.from({ length: 50 }, (_, i) => deviceCsr(`RACE${i}`).csrPem);
      const results = await Promise.all(csrs.map((csr, i) => exchange(station, { deviceSerial: `RACE${i}`, csr })));
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 201).length, 10, JSON.stringify(statuses));
      assert.equal(statuses.filter((s) => s === 409).length, 40);
      for (const r of results.filter((r) => r.status === 409)) assert.equal(r.body.code, 'CLAIM_QUOTA_EXHAUSTED');
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).used, 10);
      const issued = await admin('get', `/v1/certificates?claimId=${claim.id}&limit=100`);
      assert.equal(issued.items.length, 10);
    });

    it('answers concurrent retries of one serial with one certificate', async () => {
      const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 10 });
      const csr = deviceCsr('SAME1').csrPem;
      const results = await Promise.all(Array.from({ length: 8 }, () => exchange(station, { deviceSerial: 'SAME1', csr })));
      assert.ok(results.every((r) => r.status === 201 || r.status === 200), JSON.stringify(results.map((r) => [r.status, r.body.code])));
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).used, 1);
    });
  });

  describe('allow-lists', () => {
    it('takes 100,000 serials as CSV and as JSON, and only listed serials exchange', async () => {
      const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      const serials = Array.from({ length: 100_000 }, (_, i) => `AL${String(i).padStart(6, '0')}`);
      let res = await t.http().put(`/v1/claims/${claim.id}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', 'text/csv').send(`serial\n${serials.join('\n')}\n`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.allowlistSize, 100_000);
      res = await t.http().put(`/v1/claims/${claim.id}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', 'application/json').send(JSON.stringify(serials.slice(0, 100_000).reverse()));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.allowlistSize, 100_000);
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).allowlistSize, 100_000);
      assert.equal((await exchange(station, { deviceSerial: 'AL099999', csr: deviceCsr('AL099999').csrPem })).status, 201);
      const refused = await exchange(station, { deviceSerial: 'AL100000', csr: deviceCsr('AL100000').csrPem });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.code, 'SERIAL_NOT_ALLOWED');
    });

    it('refuses a malformed list and changes nothing', async () => {
      const { claim } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      await admin('put', `/v1/claims/${claim.id}/allowlist`, ['A1', 'A2']);
      for (const [type, body] of [['text/csv', 'A3\nbad serial!\n'], ['application/json', '["A3", 4]'], ['application/json', '{"serials": []}']]) {
        const res = await t.http().put(`/v1/claims/${claim.id}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', type).send(body);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.code, 'INVALID_ALLOWLIST');
      }
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).allowlistSize, 2);
      const plain = await t.http().put(`/v1/claims/${claim.id}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', 'text/plain').send('A1');
      assert.equal(plain.status, 415);
    });
  });

  describe('revocation', () => {
    it('stops the claim at once and, with cascade, revokes every device certificate it provisioned (CRL checked by openssl)', async () => {
      const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      const issued: Body[] = [];
      for (const serial of ['R1', 'R2', 'R3']) {
        const res = await exchange(station, { deviceSerial: serial, csr: deviceCsr(serial).csrPem });
        assert.equal(res.status, 201);
        issued.push(res.body);
      }
      const revoked = await admin('post', `/v1/claims/${claim.id}/revoke`, { reason: 'keyCompromise', cascade: true });
      assert.equal(revoked.status, 'revoked');
      assert.equal(revoked.revokedDeviceCertificates, 3);
      const again = await t.http().post(`/v1/claims/${claim.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'CLAIM_ALREADY_REVOKED');

      const res = await exchange(station, { deviceSerial: 'R4', csr: deviceCsr('R4').csrPem });
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'CLAIM_REVOKED');
      assert.equal((await refusals(claim.id)).at(-1)?.code, 'CLAIM_REVOKED');

      const crl = await t.http().get(`/v1/authorities/${deviceCa.id}/crl`).buffer(true).parse(binaryBody);
      const crlText = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file(`claim-${claim.id}.crl`, crl.body as Buffer), '-noout', '-text']).output;
      for (const device of issued) {
        assert.match(crlText, new RegExp(`Serial Number: ${device.serial.toUpperCase()}`));
        const verified = ssl.verify({ rootPem, intermediatesPem: deviceCa.chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0], leafPem: device.certificatePem, crlsDer: [crl.body as Buffer, await rootCrl()] });
        assert.equal(verified.ok, false);
        assert.match(verified.output, /certificate revoked/);
      }
      const perCertificate = await admin('get', `/v1/audit?action=certificate.revoked&limit=500`);
      assert.equal(perCertificate.items.filter((e: Body) => e.details.claimId === claim.id).length, 4, 'three devices and the claim certificate');
      const summary = await admin('get', `/v1/audit?action=claim.revoked&targetId=${claim.id}`);
      assert.equal(summary.items[0].details.revokedDeviceCertificates, 3);
      assert.equal((await admin('get', `/v1/certificates/${claim.claimCertificateId}`)).status, 'revoked');
    });
  });

  describe('claim certificates', () => {
    it('are never revoked on their own: 409 USE_CLAIM_REVOCATION naming the claim, for the operator and the admin alike', async () => {
      const { claim, station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      const device = await exchange(station, { deviceSerial: 'UC1', csr: deviceCsr('UC1').csrPem });
      assert.equal(device.status, 201, device.text);
      const operator = (await admin('post', '/v1/api-keys', { name: 'line operator', role: 'operator' })).key as string;
      for (const key of [operator, t.adminKey]) {
        const res = await t.http().post(`/v1/certificates/${claim.claimCertificateId}/revoke`).set(bearer(key)).send({ reason: 'keyCompromise' });
        assert.equal(res.status, 409, res.text);
        assert.equal(res.body.code, 'USE_CLAIM_REVOCATION');
        assert.equal(res.body.claimId, claim.id);
        assert.ok(res.body.detail.includes(`POST /v1/claims/${claim.id}/revoke`), res.body.detail);
      }
      // Nothing changed: the certificate, the claim and the line go on, and no revocation was recorded.
      assert.equal((await admin('get', `/v1/certificates/${claim.claimCertificateId}`)).status, 'active');
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).status, 'active');
      assert.equal((await admin('get', `/v1/audit?action=certificate.revoked&targetId=${claim.claimCertificateId}`)).items.length, 0);
      assert.equal((await exchange(station, { deviceSerial: 'UC2', csr: deviceCsr('UC2').csrPem })).status, 201);
      // A device certificate from the claim is still the operator's to revoke.
      const deviceRevoked = await t.http().post(`/v1/certificates/${device.body.id}/revoke`).set(bearer(operator)).send({ reason: 'keyCompromise' });
      assert.equal(deviceRevoked.status, 200, deviceRevoked.text);
      // The claim's own route stops both at once, and says so consistently.
      const revoked = await admin('post', `/v1/claims/${claim.id}/revoke`, { reason: 'keyCompromise' });
      assert.equal(revoked.status, 'revoked');
      assert.equal((await admin('get', `/v1/certificates/${claim.claimCertificateId}`)).status, 'revoked');
      assert.equal((await admin('get', `/v1/claims/${claim.id}`)).status, 'revoked');
      assert.equal((await exchange(station, { deviceSerial: 'UC3', csr: deviceCsr('UC3').csrPem })).body.code, 'CLAIM_REVOKED');
    });

    it('are left out of rotation campaigns, so a campaign revoking at its deadline cannot stop a line', async () => {
      const { claim } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id });
      const res = await t.http().post('/v1/rotations').set(bearer(t.adminKey)).send({
        selector: { certificateIds: [claim.claimCertificateId] }, reason: 'test', deadline: new Date(Date.now() + 86_400_000).toISOString(), onDeadline: 'revoke',
      });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'CAMPAIGN_EMPTY');
    });
  });

  async function rootCrl(): Promise<Buffer> {
    const rootId = (await admin('get', `/v1/authorities/${deviceCa.id}`)).parentId;
    return (await t.http().get(`/v1/authorities/${rootId}/crl`).buffer(true).parse(binaryBody)).body as Buffer;
  }

  function read(name: string): string {
    return fs.readFileSync(ssl.file(name), 'utf8');
  }

  function keyOf(file: string) {
    return createPrivateKey(fs.readFileSync(file));
  }

  function deviceCsrFromKey(keyFile: string, cn: string): string {
    const out = ssl.file(`again-${cn}.csr`);
    const made = ssl.run(['req', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-out', out]);
    assert.equal(made.status, 0, made.output);
    return read(`again-${cn}.csr`);
  }
});

describe('exchange by mutual TLS', () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  let rootPem: string;
  let deviceChain: string;
  let claim: Body;

  before(async () => {
    const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    assert.equal(made.status, 0, made.output);
    t = await startTestApp('sqlite', { env: { TLS_CERT_FILE: ssl.file('server.pem'), TLS_KEY_FILE: ssl.file('server.key') } });
    const root = await post('/v1/authorities', { name: 'R', type: 'root', subject: { commonName: 'mTLS Root' } });
    rootPem = root.certificatePem;
    const claims = await post('/v1/authorities', { name: 'C', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'mTLS Claims' } });
    const devices = await post('/v1/authorities', { name: 'D', type: 'intermediate', parentId: root.id, subject: { commonName: 'mTLS Devices' } });
    deviceChain = devices.certificatePem;
    claim = await post('/v1/claims', {
      name: 'mTLS', factory: 'F', claimAuthorityId: claims.id, deviceAuthorityId: devices.id, maxDevices: 5,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'tls-{serial}', claimCertificate: { generateKey: true },
    });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  function request(path: string, body: object, client?: { cert: string; key: string }, headers: Record<string, string> = {}): Promise<{ status: number; body: Body }> {
    return postJsonOverTls(t.baseUrl, path, body, { serverCaPem: fs.readFileSync(ssl.file('server.pem'), 'utf8'), client, headers });
  }

  async function post(path: string, body: object): Promise<Body> {
    const res = await request(path, body, undefined, bearer(t.adminKey));
    assert.ok(res.status === 201, JSON.stringify(res.body));
    return res.body;
  }

  it('exchanges over HTTPS with the claim certificate presented as the TLS client certificate', async () => {
    const csr = ssl.newCsr('ec:P-256', '/CN=M1');
    const res = await request('/v1/provisioning/exchange', { deviceSerial: 'M1', csr: csr.csrPem }, { cert: claim.claimCertificate.certificatePem, key: claim.claimCertificate.privateKeyPem });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.thingName, 'tls-M1');
    const verified = ssl.verify({ rootPem, intermediatesPem: deviceChain, leafPem: res.body.certificatePem });
    assert.ok(verified.ok, verified.output);
    const events = await t.http().get(`/v1/audit?action=certificate.issued&targetId=${res.body.id}`).set(bearer(t.adminKey)).disableTLSCerts();
    assert.equal(events.body.items[0].details.station.method, 'mtls');
    assert.equal(events.body.items[0].actor.id, claim.claimCertificate.fingerprint);
  });

  it('refuses HTTPS without a client certificate, and a device certificate as client certificate', async () => {
    const none = await request('/v1/provisioning/exchange', { deviceSerial: 'M2', csr: ssl.newCsr('ec:P-256', '/CN=M2').csrPem });
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'UNAUTHENTICATED');
    const csr = ssl.newCsr('ec:P-256', '/CN=M3');
    const issued = await request('/v1/provisioning/exchange', { deviceSerial: 'M3', csr: csr.csrPem }, { cert: claim.claimCertificate.certificatePem, key: claim.claimCertificate.privateKeyPem });
    assert.equal(issued.status, 201);
    const asDevice = await request('/v1/provisioning/exchange', { deviceSerial: 'M4', csr: ssl.newCsr('ec:P-256', '/CN=M4').csrPem }, { cert: issued.body.certificatePem, key: fs.readFileSync(csr.keyFile, 'utf8') });
    assert.equal(asDevice.status, 401);
    assert.equal(asDevice.body.code, 'NOT_A_CLAIM_CERTIFICATE');
  });
});

describe('exchange with AWS IoT (API mode, stand-in)', () => {
  let t: TestApp;
  let iot: IotStandIn;
  const ssl = new OpenSslWorkspace();
  let claimCaId: string;
  let deviceCaId: string;

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', { iot, env: { OUTBOX_POLL_MS: '25', IOT_MAX_ATTEMPTS: '1' } });
    const client = new IoTClient({ region: iot.region, endpoint: iot.endpoint });
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] });
    for (const policyName of ['ca-policy', 'line-policy']) await client.send(new CreatePolicyCommand({ policyName, policyDocument: policy }));
    iot.createThingType('sensor');
    iot.createThingGroup('line-3');
    const root = await post('/v1/authorities', { name: 'IoT Root', type: 'root', subject: { commonName: 'IoT Root' } });
    claimCaId = (await post('/v1/authorities', { name: 'IoT Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'IoT Claims' } })).id;
    deviceCaId = (await post('/v1/authorities', { name: 'IoT Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'IoT Devices' } })).id;
    await post(`/v1/authorities/${deviceCaId}/iot-registration`, { deviceRegistration: 'api', policyName: 'ca-policy' });
    const refused = await t.http().post(`/v1/authorities/${claimCaId}/iot-registration`).set(bearer(t.adminKey)).send({ deviceRegistration: 'api' });
    assert.equal(refused.body.code, 'AUTHORITY_USAGE_MISMATCH', 'AWS IoT never trusts a claim CA');
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    ssl.cleanup();
  });

  async function post(path: string, body: object): Promise<Body> {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }

  it('registers the device with the claim’s policy, thing type, group and attributes', async () => {
    const { station } = await createClaim(t, {
      claimAuthorityId: claimCaId, deviceAuthorityId: deviceCaId,
      iot: { policyName: 'line-policy', thingTypeName: 'sensor', thingGroupName: 'line-3', attributes: { batch: 'b7' } },
    });
    const csr = ssl.newCsr('ec:P-256', '/CN=IOT1');
    const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: 'IOT1', csr: csr.csrPem, attributes: { firmware: '1.2.3' } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.iot.status, 'pending');
    const started = Date.now();
    while (iot.certificate(res.body.certificateId)?.status !== 'ACTIVE') {
      assert.ok(Date.now() - started < 15_000, 'the certificate became ACTIVE in the stand-in');
      await new Promise((r) => setTimeout(r, 50));
    }
    const thing = iot.thing('acme-IOT1');
    assert.equal(thing?.thingTypeName, 'sensor');
    assert.deepEqual(thing?.thingGroups, ['line-3']);
    assert.deepEqual(thing?.attributes, { batch: 'b7', firmware: '1.2.3' });
    const arn = iot.certificateArn(res.body.certificateId);
    assert.deepEqual(iot.principalsOf('acme-IOT1'), [arn]);
    assert.deepEqual(iot.policiesAttachedTo(arn), ['line-policy']);
  });

  it('refuses a claim naming a thing type or group AWS IoT does not have', async () => {
    for (const iotOptions of [{ thingTypeName: 'no-such-type' }, { thingGroupName: 'no-such-group' }]) {
      const res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send({
        name: 'x', factory: 'F', claimAuthorityId: claimCaId, deviceAuthorityId: deviceCaId, maxDevices: 1,
        notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'x-{serial}', claimCertificate: { generateKey: true }, iot: iotOptions,
      });
      assert.equal(res.status, 422, res.text);
      assert.equal(res.body.code, 'INVALID_CLAIM');
    }
  });
});

describe('a claim whose window has closed', () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  it('refuses the station once notAfter has passed: its claim certificate ended with the window (401, not audited)', async () => {
    // Started here, not when the file loads: station tokens carry the real time, which must match the app's clock.
    const clock = new ManualClock();
    t = await startTestApp('sqlite', { clock });
    const post = async (path: string, body: object) => (await t.http().post(path).set(bearer(t.adminKey)).send(body)).body;
    const root = await post('/v1/authorities', { name: 'R', type: 'root', subject: { commonName: 'Window Root' } });
    const claims = await post('/v1/authorities', { name: 'C', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Window Claims' } });
    const devices = await post('/v1/authorities', { name: 'D', type: 'intermediate', parentId: root.id, subject: { commonName: 'Window Devices' } });
    const { claim, station } = await createClaim(t, { claimAuthorityId: claims.id, deviceAuthorityId: devices.id, notAfter: new Date(clock.now().getTime() + 3600_000).toISOString() });
    assert.equal(claim.claimCertificate.notAfter, claim.notAfter, 'the claim certificate ends with the claim');
    const body = () => ({ deviceSerial: 'LATE1', csr: ssl.newCsr('ec:P-256', '/CN=LATE1').csrPem });
    const exchange = () => t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send(body());
    assert.equal((await exchange()).status, 201);
    clock.advance(3600_000);
    const audited = (await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body.checked;
    const res = await exchange();
    assert.equal(res.status, 401, res.text);
    assert.equal(res.body.code, 'CLAIM_CERTIFICATE_EXPIRED');
    assert.equal((await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body.checked, audited);
  });
});
