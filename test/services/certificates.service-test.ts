import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Errors } from '../../src/common/errors';
import { buildCsr, deviceKeyAndCsr, testKeyPair } from '../../tools/csr-builder';
import { OpenSslWorkspace } from '../support/openssl';
import { drivers } from '../support/test-app';
import { ServiceContext } from './service-context';
import {
  assertAuditChainVerifies,
  assertOpensslVerifies,
  auditEvents,
  createCaPair,
  DAY_MS,
  opensslVerify,
  pemOf,
  rejectsWith,
  requestForKey,
} from './service-fixtures';

const BACKDATE_MS = 300_000;

for (const { driver, skip } of drivers()) {
  describe(`issuance service: CertificatesService (${driver})`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let s: ServiceContext;
    let ca: { rootId: string; issuingId: string };

    before(async () => {
      s = await ServiceContext.start(driver);
      ca = await createCaPair(s, 'Issuance');
    });
    after(async () => {
      await s?.close();
      ssl.cleanup();
    });

    it('issues a device certificate: the stored row, its audit event, and openssl verifies it under the chain', async () => {
      const now = s.clock.now();
      const { csrPem } = deviceKeyAndCsr('from-the-csr');
      const issued = await s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: csrPem, profile: 'device', thingName: 'svc-device-1', validityDays: 30, metadata: { line: 'A' } });

      const stored = await s.stored.certificates.findById(issued.id);
      assert.ok(stored, 'the certificate row is stored');
      assert.equal(stored.status, 'active');
      assert.equal(stored.authorityId, ca.issuingId);
      assert.equal(stored.profile, 'device');
      assert.equal(stored.thingName, 'svc-device-1');
      assert.equal(stored.subject, 'CN=svc-device-1');
      assert.deepEqual(stored.metadata, { line: 'A' });
      assert.equal(stored.validityClamped, false);
      assert.equal(stored.fingerprint, createHash('sha256').update(stored.certificateDer).digest('hex'));
      // Backdated for lagging device clocks; the profile's validity counts from now.
      assert.ok(Math.abs(Date.parse(stored.notBefore) - (now.getTime() - BACKDATE_MS)) < 1000, stored.notBefore);
      assert.ok(Math.abs(Date.parse(stored.notAfter) - (now.getTime() + 30 * DAY_MS)) < 1000, stored.notAfter);

      const x509 = new X509Certificate(stored.certificateDer);
      assert.equal(x509.subject, 'CN=svc-device-1');
      assert.equal(x509.serialNumber.toLowerCase().replace(/^0+/, ''), stored.serial.replace(/^0+/, ''));
      assert.equal(new Date(x509.validTo).getTime(), Date.parse(stored.notAfter));

      const [event, ...more] = await auditEvents(s, 'certificate.issued', issued.id);
      assert.equal(more.length, 0);
      assert.equal(event.actorId, s.admin.actor.id);
      assert.equal(event.details.serial, stored.serial);
      assert.equal(event.details.fingerprint, stored.fingerprint);
      assert.equal(event.details.thingName, 'svc-device-1');
      assert.equal(event.details.validityClamped, false);

      await assertOpensslVerifies(s, ssl, stored);
      const text = ssl.text(pemOf(stored.certificateDer));
      assert.match(text, /CA:FALSE/);
      assert.match(text, /TLS Web Client Authentication/);
      assert.match(text, /Digital Signature/);
      assert.doesNotMatch(text, /Key Encipherment/);
      assert.match(await s.metrics.registry.getSingleMetricAsString('fleetpki_certificates_issued_total'), /profile="device"\} [1-9]/);
    });

    it('refuses a validity beyond the profile (VALIDITY_EXCEEDS_PROFILE) and stores nothing', async () => {
      const { csrPem } = deviceKeyAndCsr('svc-too-long');
      await rejectsWith(s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: csrPem, profile: 'device', validityDays: 3651 }), Errors.validityTooLong);
      assert.equal((await s.certificates.search({ thingName: 'svc-too-long', limit: 10 })).items.length, 0);
    });

    it('clamps notAfter to the issuing CA’s and says so, in the row and the audit event', async () => {
      const short = await createCaPair(s, 'Short', { issuingValidityDays: 10 });
      const authority = (await s.stored.authorities.findById(short.issuingId))!;
      const { csrPem } = deviceKeyAndCsr('svc-clamped');
      const issued = await s.certificates.issue(s.admin, { authorityId: short.issuingId, csr: csrPem, profile: 'device', validityDays: 365 });
      const stored = (await s.stored.certificates.findById(issued.id))!;
      assert.equal(stored.notAfter, authority.notAfter);
      assert.equal(stored.validityClamped, true);
      assert.equal((await auditEvents(s, 'certificate.issued', issued.id))[0].details.validityClamped, true);
      await assertOpensslVerifies(s, ssl, stored);
      // The expiring-certificates gauge is read from the database at scrape time, per authority.
      const gauge = await s.metrics.registry.getSingleMetricAsString('fleetpki_certificates_expiring_30d');
      assert.match(gauge, new RegExp(`\\{authority_id="${short.issuingId}"\\} 1\\b`));
      assert.match(gauge, new RegExp(`\\{authority_id="${short.rootId}"\\} 0\\b`));
    });

    it('server certificates: names from the CSR; an RSA key also gets keyEncipherment, an EC key does not', async () => {
      const rsa = ssl.newCsr('rsa:2048', '/CN=svc.example.com', ['-addext', 'subjectAltName=DNS:svc.example.com,DNS:Alt.Example.com,IP:10.0.0.1']);
      const rsaCert = await s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: rsa.csrPem, profile: 'server' });
      const rsaText = ssl.text(pemOf(rsaCert.certificateDer));
      assert.match(rsaText, /Digital Signature, Key Encipherment/);
      assert.match(rsaText, /TLS Web Server Authentication/);
      assert.match(rsaText, /DNS:svc\.example\.com, DNS:alt\.example\.com, IP Address:10\.0\.0\.1/);
      await assertOpensslVerifies(s, ssl, rsaCert);

      const ec = ssl.newCsr('ec:P-256', '/CN=ec.example.com');
      const ecText = ssl.text(pemOf((await s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: ec.csrPem, profile: 'server' })).certificateDer));
      assert.match(ecText, /Digital Signature/);
      assert.doesNotMatch(ecText, /Key Encipherment/);
    });

    it('never certifies a certificate authority’s own key (KEY_NOT_ALLOWED)', async () => {
      const authority = (await s.stored.authorities.findById(ca.issuingId))!;
      const caKey = new X509Certificate(authority.certificateDer).publicKey.export({ type: 'spki', format: 'der' });
      await rejectsWith(
        s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: '', profile: 'device', thingName: 'svc-ca-key' }, { parsedCsr: requestForKey(caKey) }),
        Errors.keyNotAllowed,
      );
      assert.equal((await s.certificates.search({ thingName: 'svc-ca-key', limit: 10 })).items.length, 0);
    });

    it('reads handed in for another key (IssueOptions.reads) are not used: the CA key is still refused', async () => {
      const authority = (await s.stored.authorities.findById(ca.issuingId))!;
      const caKey = new X509Certificate(authority.certificateDer).publicKey.export({ type: 'spki', format: 'der' });
      const otherKey = requestForKey(testKeyPair('ec:P-256').publicKey.export({ type: 'spki', format: 'der' }));
      const readsForOtherKey = await s.certificates.readsFor(ca.issuingId, otherKey.publicKey.sha256, {});
      assert.equal(readsForOtherKey.reads.authorityKey, false);
      assert.equal(readsForOtherKey.reads.registration, null, 'no AWS IoT registration in the default target');
      assert.equal((await s.certificates.readsFor(ca.issuingId, otherKey.publicKey.sha256, { createdByAws: true })).reads.registration, undefined, 'not read when AWS creates the certificate');
      assert.equal((await s.certificates.readsFor('00000000-0000-4000-8000-000000000000', otherKey.publicKey.sha256, {})).reads.authority, null);
      await rejectsWith(
        s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: '', profile: 'device', thingName: 'svc-ca-key-reads' }, { parsedCsr: requestForKey(caKey), reads: readsForOtherKey }),
        Errors.keyNotAllowed,
      );
      assert.equal((await s.certificates.search({ thingName: 'svc-ca-key-reads', limit: 10 })).items.length, 0);
    });

    it('revokes once, audited; the CRL lists it for openssl; a key revoked for keyCompromise is never certified again', async () => {
      const keyPair = testKeyPair('ec:P-256');
      const issued = await s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: buildCsr({ commonName: 'svc-compromised', keyPair }), profile: 'device' });
      const revoked = await s.certificates.revoke(s.admin, issued.id, 'keyCompromise');
      assert.equal(revoked.status, 'revoked');
      const stored = (await s.stored.certificates.findById(issued.id))!;
      assert.equal(stored.status, 'revoked');
      assert.equal(stored.revocationReason, 'keyCompromise');
      assert.equal((await auditEvents(s, 'certificate.revoked', issued.id))[0].details.reason, 'keyCompromise');
      await rejectsWith(s.certificates.revoke(s.admin, issued.id, 'keyCompromise'), Errors.certificateAlreadyRevoked);
      assert.equal((await auditEvents(s, 'certificate.revoked', issued.id)).length, 1);

      const crlsDer = [(await s.crls.current(ca.rootId)).der, (await s.crls.current(ca.issuingId)).der];
      const verified = await opensslVerify(s, ssl, stored, crlsDer);
      assert.equal(verified.ok, false);
      assert.match(verified.output, /certificate revoked/);

      await rejectsWith(
        s.certificates.issue(s.admin, { authorityId: ca.issuingId, csr: buildCsr({ commonName: 'svc-compromised-again', keyPair }), profile: 'device' }),
        Errors.keyNotAllowed,
      );
    });

    it('issues from the right kind of authority only, and internal profiles only on the service’s own behalf', async () => {
      const { csrPem } = deviceKeyAndCsr('svc-wrong-issuer');
      await rejectsWith(s.certificates.issue(s.admin, { authorityId: ca.rootId, csr: csrPem, profile: 'device' }), Errors.authorityIsRoot);
      const claims = await createCaPair(s, 'Claims', { usage: 'claims' });
      await rejectsWith(s.certificates.issue(s.admin, { authorityId: claims.issuingId, csr: csrPem, profile: 'device' }), Errors.authorityUsageMismatch);
      await rejectsWith(s.certificates.issue(s.admin, { authorityId: claims.issuingId, csr: csrPem, profile: 'claim' }), Errors.profileNotFound);
      await s.authorities.disable(s.admin, claims.issuingId);
      await rejectsWith(
        s.certificates.issue(s.admin, { authorityId: claims.issuingId, csr: csrPem, profile: 'claim' }, { internalProfile: true, subject: { commonName: 'claim x' } }),
        Errors.authorityNotActive,
      );
    });

    it('leaves an audit chain that verifies', async () => {
      await assertAuditChainVerifies(s);
    });
  });
}
