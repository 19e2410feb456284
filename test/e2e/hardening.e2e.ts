import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Inputs that once reached the database as 500s or slipped past a check (found in review), kept as
 * regressions on both drivers: PostgreSQL is the stricter one (NUL in text, integer overflow).
 */
for (const { driver, skip } of drivers()) {
  describe(`request hardening on ${driver}`, { skip }, () => {
    let t: TestApp;
    const ssl = new OpenSslWorkspace();
    let caId: string;

    before(async () => {
      t = await startTestApp(driver, { env: { TRUST_PROXY: 'true' } });
      caId = (await createCaPair(t)).intermediate.id;
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    const badQueries: [string, string, Record<string, string>, string][] = [
      ['an audit cursor whose seq is a fraction', '/v1/audit', { cursor: cursorOf({ seq: 1.5 }) }, 'INVALID_CURSOR'],
      ['an audit cursor whose seq overflows', '/v1/audit', { cursor: cursorOf({ seq: 1e300 }) }, 'INVALID_CURSOR'],
      ['a certificate cursor with a NUL', '/v1/certificates', { cursor: cursorOf({ issuedAt: 'x\u0000', id: 'y' }) }, 'INVALID_CURSOR'],
      ['a thingName filter with a NUL', '/v1/certificates', { thingName: 'a\u0000b' }, 'VALIDATION_FAILED'],
      ['an audit targetId with a NUL', '/v1/audit', { targetId: 'a\u0000b' }, 'VALIDATION_FAILED'],
      ['an audit actorId with a NUL', '/v1/audit', { actorId: 'a\u0000b' }, 'VALIDATION_FAILED'],
    ];
    for (const [name, path, query, code] of badQueries) {
      it(`answers 400 ${code} for ${name}`, async () => {
        const res = await t.http().get(path).query(query).set(bearer(t.adminKey));
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.code, code);
      });
    }

    it('compares time filters as instants, whatever offset or precision they are written with', async () => {
      const device = await issueDevice(t, ssl, caId, 'time-filter');
      const notAfter = new Date((await t.http().get(`/v1/certificates/${device.id}`).set(bearer(t.adminKey))).body.notAfter);
      // One second after notAfter, written in UTC-05:00 without milliseconds.
      const later = new Date(notAfter.getTime() + 1000 - 5 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '-05:00');
      const found = await t.http().get('/v1/certificates').query({ expiringBefore: later, thingName: 'time-filter' }).set(bearer(t.adminKey));
      assert.deepEqual(found.body.items.map((c: { id: string }) => c.id), [device.id]);
      const since = new Date(Date.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const events = await t.http().get('/v1/audit').query({ since, action: 'certificate.issued' }).set(bearer(t.adminKey));
      assert.ok(events.body.items.some((e: { targetId?: string; target: { id: string } }) => e.target.id === device.id));
    });

    it('accepts the Bearer scheme in any case (RFC 7235)', async () => {
      const res = await t.http().get('/v1/authorities').set('Authorization', `bearer ${t.adminKey}`);
      assert.equal(res.status, 200);
    });

    it('records no source address when X-Forwarded-For is not an address, and still works', async () => {
      const res = await t.http().post(`/v1/authorities/${caId}/disable`).set(bearer(t.adminKey)).set('X-Forwarded-For', 'x'.repeat(300));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const events = await t.http().get('/v1/audit').query({ action: 'authority.disabled' }).set(bearer(t.adminKey));
      assert.equal(events.body.items.length, 1);
      assert.equal(events.body.items[0].sourceIp, null);
    });

    it('audits a state change once when two requests race to make it', async () => {
      const { intermediate } = await createCaPair(t);
      const disables = await Promise.all([1, 2, 3].map(() => t.http().post(`/v1/authorities/${intermediate.id}/disable`).set(bearer(t.adminKey))));
      assert.ok(disables.every((r) => r.status === 200));
      const key = await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: 'race', role: 'auditor' });
      const revokes = await Promise.all([1, 2, 3].map(() => t.http().delete(`/v1/api-keys/${key.body.id}`).set(bearer(t.adminKey))));
      assert.ok(revokes.every((r) => r.status === 200));
      const disabled = await t.http().get('/v1/audit').query({ action: 'authority.disabled', targetId: intermediate.id }).set(bearer(t.adminKey));
      const revoked = await t.http().get('/v1/audit').query({ action: 'api-key.revoked', targetId: key.body.id }).set(bearer(t.adminKey));
      assert.equal(disabled.body.items.length, 1);
      assert.equal(revoked.body.items.length, 1);
    });

    it('refuses an EC key in compressed point form, so one key cannot pass as two', async () => {
      const key = ssl.file('compressed.pem');
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', ssl.file('plain.pem')]);
      execFileSync('openssl', ['ec', '-in', ssl.file('plain.pem'), '-conv_form', 'compressed', '-out', key], { stdio: 'pipe' });
      const csr = execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=compressed']).toString();
      const { intermediate } = await createCaPair(t);
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: intermediate.id, csr, profile: 'device' });
      assert.equal(res.status, 422);
      assert.equal(res.body.code, 'UNSUPPORTED_KEY');
    });

    it('keeps the audit chain verifiable', async () => {
      const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
      assert.equal(verify.body.ok, true);
    });
  });
}
