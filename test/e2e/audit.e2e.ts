import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/** The audit chain detects a changed, deleted or truncated event and names the first broken one. */
for (const { driver, skip } of drivers()) {
  describe(`audit chain on ${driver}`, { skip }, () => {
    let t: TestApp;
    const ssl = new OpenSslWorkspace();
    let db: DataSource;

    before(async () => {
      t = await startTestApp(driver);
      db = t.app.get(DataSource);
      const { intermediate } = await createCaPair(t);
      const device = await issueDevice(t, ssl, intermediate.id, 'audit-thing-1');
      await issueDevice(t, ssl, intermediate.id, 'audit-thing-2');
      const revoked = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'superseded' });
      assert.equal(revoked.status, 200);
      const key = await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: 'ops', role: 'operator' });
      assert.equal(key.status, 201);
      assert.equal((await t.http().delete(`/v1/api-keys/${key.body.id}`).set(bearer(t.adminKey))).status, 200);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    async function verify(): Promise<{ ok: boolean; checked: number; firstBrokenSeq: number | null }> {
      const res = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
      assert.equal(res.status, 200);
      return res.body;
    }

    it('verifies after a series of operations, one event per state change', async () => {
      const result = await verify();
      // api-key.created (bootstrap), 2 × authority.created, 2 × certificate.issued, certificate.revoked,
      // api-key.created, api-key.revoked
      assert.deepEqual(result, { ok: true, checked: 8, firstBrokenSeq: null });
      const page = await t.http().get('/v1/audit').query({ action: 'certificate.issued' }).set(bearer(t.adminKey));
      assert.equal(page.body.items.length, 2);
      for (const event of page.body.items) {
        assert.equal(event.actor.role, 'admin');
        assert.ok(event.requestId, 'request id recorded');
        assert.equal(event.sourceIp, '127.0.0.1');
      }
    });

    it('pages through events with a cursor, in sequence order', async () => {
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const res = await t.http().get('/v1/audit').query({ limit: 3, ...(cursor ? { cursor } : {}) }).set(bearer(t.adminKey));
        assert.equal(res.status, 200);
        seen.push(...res.body.items.map((e: { seq: number }) => e.seq));
        cursor = res.body.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it('never records API key secrets or hashes in audit details', async () => {
      const res = await t.http().get('/v1/audit').query({ limit: 500 }).set(bearer(t.adminKey));
      const text = JSON.stringify(res.body);
      assert.ok(!text.includes(t.adminKey.split('.')[1]), 'no secret');
      assert.ok(!/secretHash|ciphertext|PRIVATE KEY/.test(text));
    });

    it('refuses raw SQL UPDATE, DELETE (and TRUNCATE on PostgreSQL) of audit rows, and still appends afterwards', async () => {
      const before = await verify();
      await assert.rejects(db.query(`UPDATE audit_events SET details = '{"forged":true}' WHERE seq = 5`), /append-only: UPDATE refused/);
      await assert.rejects(db.query(`DELETE FROM audit_events WHERE seq = 8`), /append-only: DELETE refused/);
      await assert.rejects(db.query(`DELETE FROM audit_events`), /append-only: DELETE refused/);
      if (driver === 'postgres') await assert.rejects(db.query(`TRUNCATE audit_events`), /append-only: TRUNCATE refused/);
      const [{ count }] = await db.query(`SELECT COUNT(*) AS count FROM audit_events`);
      assert.equal(Number(count), before.checked, 'no row changed or removed');
      const key = await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: 'after-refusals', role: 'auditor' });
      assert.equal(key.status, 201, 'the service still appends');
      assert.equal((await t.http().delete(`/v1/api-keys/${key.body.id}`).set(bearer(t.adminKey))).status, 200);
      assert.deepEqual(await verify(), { ok: true, checked: before.checked + 2, firstBrokenSeq: null });
    });

    /** The rest plays a schema owner who drops the triggers first: the hash chain still names what changed. */
    async function dropAppendOnlyTriggers(): Promise<void> {
      if (driver === 'postgres') {
        await db.query('DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events');
        await db.query('DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events');
      } else {
        await db.query('DROP TRIGGER IF EXISTS audit_events_no_update');
        await db.query('DROP TRIGGER IF EXISTS audit_events_no_delete');
      }
    }

    it('names the changed row when one audit event is edited in the database', async () => {
      await dropAppendOnlyTriggers();
      const [row] = await db.query(`SELECT details FROM audit_events WHERE seq = 5`);
      await db.query(`UPDATE audit_events SET details = '{"forged":true}' WHERE seq = 5`);
      assert.deepEqual(await verify(), { ok: false, checked: 4, firstBrokenSeq: 5 });
      await db.query(`UPDATE audit_events SET details = $1 WHERE seq = 5`.replace('$1', driver === 'postgres' ? '$1' : '?'), [row.details]);
      assert.equal((await verify()).ok, true, 'restoring the row restores the chain');
    });

    it('names a deleted event and a truncated tail', async () => {
      await db.query(`DELETE FROM audit_events WHERE seq = 8`);
      assert.deepEqual(await verify(), { ok: false, checked: 7, firstBrokenSeq: 8 });
      await db.query(`DELETE FROM audit_events WHERE seq = 3`);
      assert.deepEqual(await verify(), { ok: false, checked: 2, firstBrokenSeq: 3 });
    });
  });
}
