import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CrlService } from '../../src/revocation/crl.service';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, binaryBody, drivers, ManualClock, startReplicas, startTestApp, TestApp } from '../support/test-app';

const VALIDITY = 3600;
const REFRESH_BEFORE = 600;

async function crlInfo(t: TestApp, ssl: OpenSslWorkspace, authorityId: string): Promise<{ number: number; thisUpdate: Date; nextUpdate: Date; der: Buffer }> {
  const res = await t.http().get(`/v1/authorities/${authorityId}/crl`).buffer(true).parse(binaryBody);
  assert.equal(res.status, 200);
  const file = ssl.file(`crl-${Math.random().toString(36).slice(2)}.der`, res.body as Buffer);
  const out = ssl.run(['crl', '-inform', 'DER', '-in', file, '-noout', '-crlnumber', '-lastupdate', '-nextupdate']).output;
  const field = (name: string) => new RegExp(`${name}=(.*)`).exec(out)![1].trim();
  return {
    number: parseInt(field('crlNumber'), 16),
    thisUpdate: new Date(field('lastUpdate')),
    nextUpdate: new Date(field('nextUpdate')),
    der: res.body as Buffer,
  };
}

/** CRL freshness: thisUpdate/nextUpdate from configuration, re-signed before nextUpdate, numbers only grow. */
for (const { driver, skip } of drivers()) {
  describe(`CRL publication on ${driver}`, { skip }, () => {
    const clock = new ManualClock();
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let caId: string;

    before(async () => {
      t = await startTestApp(driver, {
        clock,
        env: { CRL_VALIDITY_SECONDS: String(VALIDITY), CRL_REFRESH_BEFORE_SECONDS: String(REFRESH_BEFORE) },
      });
      caId = (await createCaPair(t)).intermediate.id;
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('sets nextUpdate from CRL_VALIDITY_SECONDS and serves the same CRL while it is fresh', async () => {
      const first = await crlInfo(t, ssl, caId);
      assert.equal((first.nextUpdate.getTime() - first.thisUpdate.getTime()) / 1000, VALIDITY);
      clock.advance((VALIDITY - REFRESH_BEFORE - 60) * 1000);
      const again = await crlInfo(t, ssl, caId);
      assert.equal(again.number, first.number);
      assert.deepEqual(again.der, first.der);
    });

    it('re-signs the CRL with a higher number once it is within the refresh window of nextUpdate', async () => {
      const before = await crlInfo(t, ssl, caId);
      clock.advance(120 * 1000);
      const after = await crlInfo(t, ssl, caId);
      assert.ok(after.number > before.number);
      assert.ok(after.thisUpdate > before.thisUpdate);
    });

    it('re-signs in the background sweep without any request', async () => {
      const before = await crlInfo(t, ssl, caId);
      clock.advance((VALIDITY - REFRESH_BEFORE + 1) * 1000);
      await t.app.get(CrlService).sweep();
      clock.advance(-1000); // a GET right now must not need to regenerate: the sweep already did
      const after = await crlInfo(t, ssl, caId);
      assert.equal(after.number, before.number + 1);
    });

    it('lists a revocation at once, however fresh the previous CRL was', async () => {
      const device = await issueDevice(t, ssl, caId, 'crl-thing');
      const before = await crlInfo(t, ssl, caId);
      assert.equal((await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'unspecified' })).status, 200);
      const after = await crlInfo(t, ssl, caId);
      assert.ok(after.number > before.number);
      const text = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('r.der', after.der), '-noout', '-text']).output;
      assert.ok(text.toLowerCase().replace(/:/g, '').includes(device.serial));
      assert.doesNotMatch(text, /CRL Reason Code/, 'reason unspecified is omitted (RFC 5280 §5.3.1)');
    });
  });
}

/** Two replicas on one PostgreSQL database never hand out the same CRL number. */
for (const { driver, skip } of drivers().filter((d) => d.driver === 'postgres')) {
  describe('CRL numbers across replicas', { skip }, () => {
    let replicas: Awaited<ReturnType<typeof startReplicas>>;
    let a: TestApp;
    let b: TestApp;
    before(async () => {
      replicas = await startReplicas(driver, {});
      ({ a, b } = replicas);
    });
    after(async () => {
      await replicas?.close();
    });

    it('allocates distinct, increasing CRL numbers when both replicas re-sign at once', async () => {
      const { intermediate } = await createCaPair(a);
      const crls = a.app.get(CrlService);
      const crlsB = b.app.get(CrlService);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? crls : crlsB).refresh(intermediate.id)));
      const numbers = results.map((crl) => crl.crlNumber);
      // Per-process single-flight may merge some calls; whatever was signed has a unique number.
      assert.equal(new Set(numbers).size, new Set(results.map((r) => r.der.toString('base64'))).size);
      const ssl = new OpenSslWorkspace();
      try {
        const latest = await crlInfo(b, ssl, intermediate.id);
        assert.equal(latest.number, Math.max(...numbers));
      } finally {
        ssl.cleanup();
      }
    });
  });
}
