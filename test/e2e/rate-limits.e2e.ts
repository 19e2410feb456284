import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { createClaim, deviceToken, stationToken, StationCredentials } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/**
 * Request rate limits (docs/limits.md): a 429 RATE_LIMITED problem with Retry-After, per source address (before
 * authentication, X-Forwarded-For only with TRUST_PROXY), per API key, per claim and per station or device certificate
 * (after authentication), and a refusal spends nothing: no certificate, no budget of another limit.
 */

/** Asserts a 429 RATE_LIMITED of `dimension`, Retry-After equal to the body's and within [min, max]; returns it. */
function assertRateLimited(res: { status: number; headers: Record<string, string>; text: string }, dimension: string, min: number, max: number): number {
  assert.equal(res.status, 429, res.text);
  assert.match(res.headers['content-type'], /^application\/problem\+json/);
  const body = JSON.parse(res.text) as Body;
  assert.equal(body.code, 'RATE_LIMITED');
  assert.equal(body.rateLimit, dimension);
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter), `Retry-After: ${res.headers['retry-after']}`);
  assert.equal(body.retryAfterSeconds, retryAfter, 'the body says what the header says');
  assert.ok(retryAfter >= min && retryAfter <= max, `Retry-After ${retryAfter} within [${min}, ${max}]`);
  return retryAfter;
}

function refusalsCounted(metrics: string, dimension: string): number {
  const match = new RegExp(`^fleetpki_rate_limited_total\\{dimension="${dimension}"\\} (\\d+)$`, 'm').exec(metrics);
  return match ? Number(match[1]) : 0;
}

for (const { driver, skip } of drivers()) {
  describe(`rate limits per API key, claim, station and device on ${driver}`, { skip }, () => {
    let t: TestApp;
    let auditorKey: string;
    let deviceCaId: string;
    let claimCaId: string;
    let station: StationCredentials;
    let claimId: string;
    let device: { certificatePem: string; key: KeyObject };

    before(async () => {
      // 30/min: one token every 2 s; claim 6/min (10 s); station 3/min (20 s).
      t = await startTestApp(driver, { env: { RATE_LIMIT_API_KEY: '30/min', RATE_LIMIT_CLAIM: '6/min', RATE_LIMIT_STATION: '3/min' } });
      const root = await admin('/v1/authorities', { name: 'RL Root', type: 'root', subject: { commonName: 'Rate Limit Root' } });
      claimCaId = (await admin('/v1/authorities', { name: 'RL Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Rate Limit Claims' } })).id;
      deviceCaId = (await admin('/v1/authorities', { name: 'RL Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Rate Limit Devices' } })).id;
      const made = await createClaim(t, { claimAuthorityId: claimCaId, deviceAuthorityId: deviceCaId });
      station = made.station;
      claimId = made.claim.id;
      auditorKey = (await admin('/v1/api-keys', { name: 'limited auditor', role: 'auditor' })).key;
      const { csrPem, privateKey } = deviceKeyAndCsr('rl-device');
      const cert = await admin('/v1/certificates', { authorityId: deviceCaId, csr: csrPem, profile: 'device', thingName: 'rl-device' });
      device = { certificatePem: cert.certificatePem, key: privateKey };
    });
    after(async () => {
      await t?.close();
    });

    async function admin(path: string, body: object): Promise<Body> {
      const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
      assert.equal(res.status, 201, `${path}: ${res.text}`);
      return res.body;
    }

    function exchange(sub: string, serial: string) {
      return t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station, { sub })}`).send({ deviceSerial: serial, csr: deviceKeyAndCsr(serial).csrPem });
    }

    it('refuses an API key past its limit with 429 and a Retry-After after which it is served again; other keys are not affected', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await t.http().get('/v1/authorities').set(bearer(auditorKey))).status);
      assert.deepEqual(new Set(statuses), new Set([200]), 'the limit is served');
      const refused = await t.http().get('/v1/authorities').set(bearer(auditorKey));
      const retryAfter = assertRateLimited(refused, 'api-key', 1, 2);
      assert.equal((await t.http().get('/v1/authorities').set(bearer(t.adminKey))).status, 200, 'another key has its own budget');
      // Still refused just before Retry-After runs out would be timing-sensitive; after it, a token is there.
      await sleep(retryAfter * 1000 + 50);
      assert.equal((await t.http().get('/v1/authorities').set(bearer(auditorKey))).status, 200, 'served again after Retry-After');
      const again = await t.http().get('/v1/authorities').set(bearer(auditorKey));
      assertRateLimited(again, 'api-key', 1, 2);
    });

    it('counts a key before its role check: a refused write costs neither an audit event nor a 403', async () => {
      const res = await t.http().post('/v1/api-keys').set(bearer(auditorKey)).send({ name: 'x', role: 'admin' });
      assertRateLimited(res, 'api-key', 1, 2);
      const denied = await t.http().get('/v1/audit?action=auth.denied').set(bearer(t.adminKey));
      assert.equal(denied.status, 200, denied.text);
      assert.equal(denied.body.items.length, 0, JSON.stringify(denied.body.items));
    });

    it('limits each station of a claim on its own and the claim as a whole; a station past its limit spends nothing of the claim', async () => {
      const line1 = [];
      for (let i = 0; i < 5; i++) line1.push(await exchange('line-1', `L1-${i}`));
      assert.deepEqual(line1.slice(0, 3).map((res) => res.status), [201, 201, 201], line1.map((res) => res.text).join('\n'));
      for (const res of line1.slice(3)) assertRateLimited(res, 'station', 19, 20);
      // line-1's two refusals took nothing from the claim (6/min): line-2 still gets its three.
      const line2 = [];
      for (let i = 0; i < 3; i++) line2.push(await exchange('line-2', `L2-${i}`));
      assert.deepEqual(line2.map((res) => res.status), [201, 201, 201], line2.map((res) => res.text).join('\n'));
      // Now the claim's six are spent: a third station is refused for the claim.
      assertRateLimited(await exchange('line-3', 'L3-0'), 'claim', 9, 10);
      const issued = await t.http().get(`/v1/certificates?claimId=${claimId}&limit=100`).set(bearer(t.adminKey));
      assert.equal(issued.status, 200, issued.text);
      assert.deepEqual(issued.body.items.map((c: Body) => c.thingName).sort(), ['acme-L1-0', 'acme-L1-1', 'acme-L1-2', 'acme-L2-0', 'acme-L2-1', 'acme-L2-2'], 'nothing issued for a refusal');
    });

    it('does not let anyone without the claim key spend a station’s budget: a bad token is a 401, not a 429', async () => {
      const other = await createClaim(t, { claimAuthorityId: claimCaId, deviceAuthorityId: deviceCaId });
      const forged = stationToken(t, other.station, { sub: 'line-9' }, station.privateKey);
      for (let i = 0; i < 5; i++) {
        const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${forged}`).send({ deviceSerial: `F-${i}`, csr: deviceKeyAndCsr(`F-${i}`).csrPem });
        assert.equal(res.status, 401, res.text);
      }
      const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, other.station, { sub: 'line-9' })}`).send({ deviceSerial: 'G-0', csr: deviceKeyAndCsr('G-0').csrPem });
      assert.equal(res.status, 201, res.text);
    });

    it('limits a device certificate on renewal, before its body is read', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${deviceToken(t, device.certificatePem, device.key)}`).send({ csr: 'not a CSR' });
        statuses.push(res.status);
      }
      assert.ok(statuses.every((status) => status === 400 || status === 403), `authenticated, then refused on its merits: ${statuses}`);
      const res = await t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${deviceToken(t, device.certificatePem, device.key)}`).set('Content-Type', 'application/json').send('{"csr":');
      assertRateLimited(res, 'station', 19, 20);
    });

    it('counts the refusals in fleetpki_rate_limited_total by limit', async () => {
      const metrics = (await t.http().get('/metrics')).text;
      assert.ok(refusalsCounted(metrics, 'api-key') >= 3, metrics);
      assert.equal(refusalsCounted(metrics, 'station'), 3);
      assert.equal(refusalsCounted(metrics, 'claim'), 1);
      assert.equal(refusalsCounted(metrics, 'source'), 0);
    });
  });
}

describe('rate limit per source address, before authentication', () => {
  describe('with TRUST_PROXY=true: the client of X-Forwarded-For, IPv6 by /64', () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp('sqlite', { env: { RATE_LIMIT_SOURCE: '3/min', TRUST_PROXY: 'true' } });
    });
    after(async () => {
      await t?.close();
    });
    const from = (address: string) => ({ 'X-Forwarded-For': address });

    it('refuses the fourth request of an address with 429 before authentication (not 401), Retry-After 20', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await t.http().get('/v1/authorities').set(from('203.0.113.5'))).status, 401);
      assertRateLimited(await t.http().get('/v1/authorities').set(from('203.0.113.5')), 'source', 19, 20);
      assertRateLimited(await t.http().get('/v1/authorities').set({ ...from('203.0.113.5'), ...bearer(t.adminKey) }), 'source', 19, 20);
      // Before the body is read, too: a large body is refused the same way.
      assertRateLimited(await t.http().post('/v1/api-keys').set(from('203.0.113.5')).send({ pad: 'x'.repeat(60_000) }), 'source', 19, 20);
      assert.equal((await t.http().get('/v1/authorities').set(from('203.0.113.6'))).status, 401, 'another address has its own budget');
    });

    it('still answers the health probes of a limited address', async () => {
      for (const path of ['/healthz', '/readyz']) assert.equal((await t.http().get(path).set(from('203.0.113.5'))).status, 200, path);
    });

    it('counts an IPv6 /64 as one source', async () => {
      for (let i = 1; i <= 3; i++) assert.equal((await t.http().get('/v1/authorities').set(from(`2001:db8:1:2::${i}`))).status, 401);
      assertRateLimited(await t.http().get('/v1/authorities').set(from('2001:db8:1:2:ffff:ffff:ffff:ffff')), 'source', 19, 20);
      assert.equal((await t.http().get('/v1/authorities').set(from('2001:db8:1:3::1'))).status, 401, 'the next /64 is another source');
    });

    it('counts the refusals in fleetpki_rate_limited_total{dimension="source"}', async () => {
      const metrics = (await t.http().get('/metrics').set(from('198.51.100.1'))).text;
      assert.equal(refusalsCounted(metrics, 'source'), 4);
    });
  });

  describe('with TRUST_PROXY naming the proxies: the address the nearest untrusted hop gave, not what the client wrote', () => {
    let t: TestApp;
    before(async () => {
      // The test client connects from 127.0.0.1: it plays the load balancer.
      t = await startTestApp('sqlite', { env: { RATE_LIMIT_SOURCE: '3/min', TRUST_PROXY: '127.0.0.1/32' } });
    });
    after(async () => {
      await t?.close();
    });

    it('limits the client the load balancer saw, whatever the client put in front of it', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await t.http().get('/v1/authorities').set('X-Forwarded-For', `10.9.9.${i}, 203.0.113.7`)).status, 401);
      assertRateLimited(await t.http().get('/v1/authorities').set('X-Forwarded-For', '10.9.9.99, 203.0.113.7'), 'source', 19, 20);
      assert.equal((await t.http().get('/v1/authorities').set('X-Forwarded-For', '203.0.113.8')).status, 401, 'another client');
    });
  });

  describe('without TRUST_PROXY: the TCP peer, whatever X-Forwarded-For says', () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp('sqlite', { env: { RATE_LIMIT_SOURCE: '3/min' } });
    });
    after(async () => {
      await t?.close();
    });

    it('is not fooled by a new X-Forwarded-For on every request', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await t.http().get('/v1/authorities').set('X-Forwarded-For', `192.0.2.${i}`)).status, 401);
      assertRateLimited(await t.http().get('/v1/authorities').set('X-Forwarded-For', '192.0.2.99'), 'source', 19, 20);
    });
  });

  describe('switched off', () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp('sqlite', { env: { RATE_LIMIT_SOURCE: 'off', RATE_LIMIT_API_KEY: '0' } });
    });
    after(async () => {
      await t?.close();
    });

    it('never answers 429 with RATE_LIMIT_SOURCE=off and RATE_LIMIT_API_KEY=0', async () => {
      for (let i = 0; i < 50; i++) assert.equal((await t.http().get('/v1/authorities').set(bearer(t.adminKey))).status, 200);
    });
  });
});
