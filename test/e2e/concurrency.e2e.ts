import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCaPair } from '../support/fixtures';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';
import { buildCsr } from '../../tools/csr-builder';

const ISSUANCES = 200;

function groupCommitMetrics(text: string): { sum: number; count: number } {
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { sum: value('fleetpki_group_commit_size_sum'), count: value('fleetpki_group_commit_size_count') };
}

/**
 * Concurrent issuance: serials, audit sequence numbers and the chain head are decided in the database,
 * so 200 requests at once give 200 distinct serials, 200 audit events and a chain that verifies.
 */
for (const { driver, skip } of drivers()) {
  describe(`concurrent issuance on ${driver}`, { skip }, () => {
    let t: TestApp;
    let issuedIds: string[] = [];
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

      // Group commit: the issuances shared transactions (fewer commits than certificates), and every one was counted.
      const groups = groupCommitMetrics((await t.http().get('/metrics')).text);
      assert.ok(groups.sum >= ISSUANCES, `every issuance committed in a group (${groups.sum})`);
      assert.ok(groups.count < groups.sum, `groups of more than one (${groups.count} commits for ${groups.sum} works)`);
      issuedIds = responses.map((r) => r.body.id as string);
    });

    it('revokes concurrently in groups: a certificate revoked twice in the same burst gets exactly one 200 and one 409, the rest all 200', async () => {
      const targets = issuedIds.slice(0, 40);
      const responses = await Promise.all(
        [...targets, targets[0]].map((id) => t.http().post(`/v1/certificates/${id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'cessationOfOperation' })),
      );
      const statuses = responses.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, targets.length, statuses.join(','));
      assert.equal(statuses.filter((s) => s === 409).length, 1, statuses.join(','));
      const revokedEvents = await t.http().get('/v1/audit').query({ action: 'certificate.revoked', limit: 500 }).set(bearer(t.adminKey));
      assert.equal(revokedEvents.body.items.length, targets.length);
      assert.equal((await t.http().get('/v1/audit/verify').set(bearer(t.adminKey))).body.ok, true);
    });
  });
}
