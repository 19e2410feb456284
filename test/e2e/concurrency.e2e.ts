import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCaPair } from '../support/fixtures';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';
import { buildCsr } from '../../tools/csr-builder';

const ISSUANCES = 200;

/**
 * Concurrent issuance: serials, audit sequence numbers and the chain head are decided in the database,
 * so 200 requests at once give 200 distinct serials, 200 audit events and a chain that verifies.
 */
for (const { driver, skip } of drivers()) {
  describe(`concurrent issuance on ${driver}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(driver);
    });
    after(async () => {
      await t?.close();
    });

    it(`issues ${ISSUANCES} certificates at once with distinct serials and an intact audit chain`, async () => {
      const { intermediate } = await createCaPair(t);
      const csrs = Array.from({ length: ISSUANCES }, (_, i) => buildCsr({ commonName: `load-${i}` }));
      // Verification running while events are appended must not report tampering that did not happen.
      const verifying = Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          await new Promise((r) => setTimeout(r, i * 50));
          return (await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body;
        }),
      );
      const responses = await Promise.all(
        csrs.map((csr, i) =>
          t
            .http()
            .post('/v1/certificates')
            .set(bearer(t.adminKey))
            .send({ authorityId: intermediate.id, csr, profile: 'device', thingName: `load-${i}` }),
        ),
      );
      const failures = responses.filter((r) => r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`);
      assert.deepEqual(failures, []);
      for (const result of await verifying) assert.equal(result.ok, true, JSON.stringify(result));
      const serials = new Set(responses.map((r) => r.body.serial));
      assert.equal(serials.size, ISSUANCES);

      const issued = new Set<string>();
      let cursor: string | undefined;
      do {
        const page = await t
          .http()
          .get('/v1/audit')
          .query({ action: 'certificate.issued', limit: 500, ...(cursor ? { cursor } : {}) })
          .set(bearer(t.adminKey));
        for (const event of page.body.items) issued.add(event.details.serial);
        cursor = page.body.nextCursor ?? undefined;
      } while (cursor);
      assert.equal(issued.size, ISSUANCES);
      assert.deepEqual([...issued].sort(), [...serials].sort());

      const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
      assert.deepEqual(verify.body, { ok: true, checked: ISSUANCES + 3, firstBrokenSeq: null });

      const list = await t.http().get('/v1/certificates').query({ authorityId: intermediate.id, limit: 500 }).set(bearer(t.adminKey));
      assert.equal(list.body.items.length, ISSUANCES);
    });
  });
}
