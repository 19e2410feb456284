import assert from 'node:assert/strict';
import { KeyObject, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Errors } from '../../src/common/errors';
import { buildCsr, deviceKeyAndCsr, testKeyPair } from '../../tools/csr-builder';
import { OpenSslWorkspace } from '../support/openssl';
import { drivers, ManualClock } from '../support/test-app';
import { ServiceContext } from './service-context';
import { assertAuditChainVerifies, assertOpensslVerifies, auditEvents, createCaPair, DAY_MS, rejectsWith } from './service-fixtures';

const GRACE_SECONDS = 3600;

for (const { driver, skip } of drivers()) {
  describe(`renewal service: RenewalService (${driver})`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    // Certificates are issued three weeks back; moving into their renewal window then brings the clock to the real
    // time, at which openssl verifies what renewal issues.
    const clock = new ManualClock(new Date(Date.now() - 21 * DAY_MS));
    let s: ServiceContext;
    let ca: { rootId: string; issuingId: string };
    const issued = new Map<string, { id: string; keyPair: { publicKey: KeyObject; privateKey: KeyObject } }>();

    async function issue(name: string, profile: 'device' | 'server', validityDays: number): Promise<void> {
      const keyPair = testKeyPair('ec:P-256');
      const certificate = await s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: buildCsr({ commonName: name, keyPair }), profile, validityDays, ...(profile === 'device' ? { thingName: name } : {}) });
      issued.set(name, { id: certificate.id, keyPair });
    }

    /** Renews `name` as its device would: with a new key, or the same key when `sameKey`. */
    async function renew(name: string, options: { sameKey?: boolean; identity?: Awaited<ReturnType<ServiceContext['device']>> } = {}) {
      const { id, keyPair } = issued.get(name)!;
      const csr = options.sameKey ? buildCsr({ commonName: name, keyPair }) : deviceKeyAndCsr(name).csrPem;
      return s.renewals.renew(options.identity ?? (await s.device(id)), csr);
    }

    before(async () => {
      s = await ServiceContext.start(driver, { clock, env: { RENEWAL_GRACE_SECONDS: String(GRACE_SECONDS), RENEWAL_SAME_KEY_PROFILES: 'server', RENEWAL_AFTER_EXPIRY_DAYS: 'server=5' } });
      ca = await createCaPair(s, 'Renewal');
      for (const name of ['renew-a', 'renew-b', 'renew-c', 'renew-g']) await issue(name, 'device', 30);
      await issue('renew-d', 'device', 10);
      await issue('e.example.com', 'server', 18);
      await issue('f.example.com', 'server', 10);
    });
    after(async () => {
      await s?.close();
      ssl.cleanup();
    });

    it('refuses before the renewal window (RENEWAL_NOT_YET_ALLOWED, when it opens), audited as the device’s', async () => {
      const a = (await s.stored.certificates.findById(issued.get('renew-a')!.id))!;
      const refused = await rejectsWith(renew('renew-a'), Errors.renewalNotYetAllowed);
      // The last third of the lifetime (which starts at the backdated notBefore).
      const lifetime = Date.parse(a.notAfter) - Date.parse(a.notBefore);
      assert.equal(refused.extra.renewableFrom, new Date(Date.parse(a.notAfter) - lifetime / 3).toISOString());
      const [event] = await auditEvents(s, 'certificate.renewal-refused', a.id);
      assert.equal(event.details.code, 'RENEWAL_NOT_YET_ALLOWED');
      assert.equal(event.actorType, 'device-certificate');
      assert.equal(event.actorId, a.fingerprint);
    });

    it('opens early for a certificate a rotation campaign covers, and ticks it off', async () => {
      const b = issued.get('renew-b')!;
      const campaign = await s.rotations.open(s.admin, { selector: { certificateIds: [b.id] }, reason: 'early', deadline: new Date(clock.now().getTime() + 5 * DAY_MS).toISOString(), onDeadline: 'report' });
      const replacement = await renew('renew-b');
      assert.equal(replacement.replacesId, b.id);
      assert.deepEqual((await s.rotations.get(campaign.id)).progress, { total: 1, renewed: 1, pending: 0, revoked: 0, overdue: 0 });
    });

    it('inside the window: needs a new key (SAME_KEY_NOT_ALLOWED); the replacement keeps the thing and its lineage; the old one is superseded, audited', async () => {
      clock.advance(21 * DAY_MS);
      const old = (await s.stored.certificates.findById(issued.get('renew-a')!.id))!;
      await rejectsWith(renew('renew-a', { sameKey: true }), Errors.sameKeyNotAllowed);

      const before = await s.device(old.id);
      const replacement = await renew('renew-a');
      const stored = (await s.stored.certificates.findById(replacement.id))!;
      assert.equal(stored.thingName, 'renew-a');
      assert.equal(stored.replacesId, old.id);
      assert.equal(stored.authorityId, old.authorityId);
      assert.notEqual(stored.publicKeySha256, old.publicKeySha256);
      const superseded = (await s.stored.certificates.findById(old.id))!;
      assert.equal(superseded.status, 'superseded');
      assert.equal(superseded.replacedById, replacement.id);
      const [event] = await auditEvents(s, 'certificate.superseded', old.id);
      assert.equal(event.details.replacedBy, replacement.id);
      assert.equal(event.details.graceUntil, new Date(clock.now().getTime() + GRACE_SECONDS * 1000).toISOString());
      assert.equal((await auditEvents(s, 'certificate.issued', replacement.id))[0].details.renewalOf, old.id);
      await assertOpensslVerifies(s, ssl, stored);

      await rejectsWith(renew('renew-a'), Errors.certificateSuperseded);
      // A device that read its certificate before the renewal committed is refused in the transaction, and nothing is stored.
      await rejectsWith(renew('renew-a', { identity: before }), Errors.certificateSuperseded);
      assert.equal((await s.certificates.search({ thingName: 'renew-a', limit: 10 })).items.length, 2);
    });

    it('a revoked certificate does not renew (CERTIFICATE_REVOKED)', async () => {
      await s.certificates.revoke(s.admin, issued.get('renew-c')!.id, 'keyCompromise');
      await rejectsWith(renew('renew-c'), Errors.certificateRevoked);
    });

    it('after expiry: refused by default (CERTIFICATE_EXPIRED); renewed within RENEWAL_AFTER_EXPIRY_DAYS, with the same key where RENEWAL_SAME_KEY_PROFILES allows', async () => {
      await rejectsWith(renew('renew-d'), Errors.certificateExpired);
      const e = (await s.stored.certificates.findById(issued.get('e.example.com')!.id))!;
      const renewed = await renew('e.example.com', { sameKey: true });
      assert.equal(renewed.publicKeySha256, e.publicKeySha256);
      assert.equal(renewed.subject, 'CN=e.example.com');
      await assertOpensslVerifies(s, ssl, renewed);
      await rejectsWith(renew('f.example.com', { sameKey: true }), Errors.certificateExpired);
    });

    it('renews under the successor of a rotated issuing CA', async () => {
      const { successor } = await s.authorityRotation.rotate(s.admin, ca.issuingId, {});
      const renewed = await renew('renew-g');
      assert.equal(renewed.authorityId, successor.id);
      assert.ok(new X509Certificate(renewed.certificateDer).checkIssued(new X509Certificate(successor.certificateDer)));
      await assertOpensslVerifies(s, ssl, renewed);
    });

    it('leaves an audit chain that verifies', async () => {
      await assertAuditChainVerifies(s);
    });
  });
}
