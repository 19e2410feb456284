import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Errors } from '../../src/common/errors';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { OpenSslWorkspace } from '../support/openssl';
import { drivers } from '../support/test-app';
import { ServiceContext } from './service-context';
import { assertAuditChainVerifies, assertOpensslVerifies, auditEvents, createCaPair, DAY_MS, pemOf, rejectsWith } from './service-fixtures';

for (const { driver, skip } of drivers()) {
  describe(`authority services: AuthoritiesService and AuthorityRotationService (${driver})`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let s: ServiceContext;

    before(async () => {
      s = await ServiceContext.start(driver);
    });
    after(async () => {
      await s?.close();
      ssl.cleanup();
    });

    it('creates a root and an intermediate: rows, audit events, CA extensions; openssl verifies the chain; path length is inherited', async () => {
      const root = await s.authorities.create(s.admin, { name: 'Chain Root', type: 'root', keyBackend: 'local', subject: { commonName: 'Chain Root CA', organization: 'Fleet' }, pathLength: 1 });
      const intermediate = await s.authorities.create(s.admin, { name: 'Chain Issuing', type: 'intermediate', parentId: root.id, keyBackend: 'local', subject: { commonName: 'Chain Issuing CA' } });

      const storedRoot = (await s.stored.authorities.findById(root.id))!;
      const stored = (await s.stored.authorities.findById(intermediate.id))!;
      assert.equal(storedRoot.status, 'active');
      assert.equal(storedRoot.allowLeafIssuance, false);
      assert.equal(stored.parentId, root.id);
      assert.equal(stored.pathLength, 0);
      assert.equal(stored.allowLeafIssuance, true);
      assert.equal(stored.keySpec, 'EC_P256');
      assert.notEqual(stored.publicKeySha256, storedRoot.publicKeySha256);
      assert.equal((await auditEvents(s, 'authority.created', root.id)).length, 1);
      assert.equal((await auditEvents(s, 'authority.created', intermediate.id))[0].details.fingerprint, stored.fingerprint);

      const rootCert = new X509Certificate(storedRoot.certificateDer);
      assert.equal(rootCert.issuer, rootCert.subject);
      assert.ok(new X509Certificate(stored.certificateDer).checkIssued(rootCert));
      const text = ssl.text(pemOf(stored.certificateDer));
      assert.match(text, /CA:TRUE, pathlen:0/);
      assert.match(text, /Certificate Sign, CRL Sign/);
      assert.match(text, new RegExp(`URI:.*/v1/authorities/${root.id}/crl`));
      await assertOpensslVerifies(s, ssl, { authorityId: root.id, certificateDer: stored.certificateDer });

      await rejectsWith(
        s.authorities.create(s.admin, { name: 'Too Deep', type: 'intermediate', parentId: intermediate.id, keyBackend: 'local', subject: { commonName: 'Too Deep' } }),
        Errors.pathLengthExceeded,
      );
      await rejectsWith(
        s.authorities.create(s.admin, { name: 'Too Long Path', type: 'intermediate', parentId: root.id, keyBackend: 'local', subject: { commonName: 'Too Long Path' }, pathLength: 1 }),
        Errors.pathLengthExceeded,
      );
    });

    it('clamps an intermediate to its parent’s validity and never starts it before the parent', async () => {
      const root = await s.authorities.create(s.admin, { name: 'Short Root', type: 'root', keyBackend: 'local', subject: { commonName: 'Short Root CA' }, validityDays: 30 });
      // A minute earlier, the backdated start would fall before the root's own.
      s.clock.advance(-60_000);
      try {
        const intermediate = await s.authorities.create(s.admin, { name: 'Short Issuing', type: 'intermediate', parentId: root.id, keyBackend: 'local', subject: { commonName: 'Short Issuing CA' }, validityDays: 365 });
        assert.equal(intermediate.validityClamped, true);
        const stored = (await s.stored.authorities.findById(intermediate.id))!;
        assert.equal(stored.notAfter, root.notAfter);
        assert.equal(stored.notBefore, root.notBefore);
        await assertOpensslVerifies(s, ssl, { authorityId: root.id, certificateDer: stored.certificateDer });
      } finally {
        s.clock.advance(60_000);
      }
      assert.ok(Date.parse(root.notAfter) - s.clock.now().getTime() <= 30 * DAY_MS);
    });

    it('refuses malformed requests before making a key, and stores nothing', async () => {
      const before = (await s.authorities.all()).length;
      await rejectsWith(s.authorities.create(s.admin, { name: 'No CN', type: 'root', keyBackend: 'local', subject: { organization: 'Fleet' } }), Errors.invalidSubject);
      await rejectsWith(s.authorities.create(s.admin, { name: 'Root With Parent', type: 'root', parentId: 'x', keyBackend: 'local', subject: { commonName: 'R' } }), Errors.validation);
      await rejectsWith(s.authorities.create(s.admin, { name: 'Orphan', type: 'intermediate', keyBackend: 'local', subject: { commonName: 'Orphan' } }), Errors.parentRequired);
      await rejectsWith(s.authorities.create(s.admin, { name: 'KMS Id', type: 'root', keyBackend: 'local', kmsKeyId: 'alias/x', subject: { commonName: 'K' } }), Errors.validation);
      await rejectsWith(s.authorities.create(s.admin, { name: 'No KMS', type: 'root', keyBackend: 'aws-kms', subject: { commonName: 'K' } }), Errors.keyBackendNotConfigured);
      assert.equal((await s.authorities.all()).length, before);
    });

    it('disables once (one audit event); a disabled authority issues nothing and parents nothing', async () => {
      const { rootId, issuingId } = await createCaPair(s, 'Disabled');
      const disabled = await s.authorities.disable(s.admin, issuingId);
      assert.equal(disabled.status, 'disabled');
      await s.authorities.disable(s.admin, issuingId);
      assert.equal((await auditEvents(s, 'authority.disabled', issuingId)).length, 1);
      assert.equal((await s.stored.authorities.findById(issuingId))!.status, 'disabled');
      await rejectsWith(s.certificates.issue(s.admin, { authorityId: issuingId, csr: deviceKeyAndCsr('svc-disabled').csrPem, profile: 'device' }), Errors.authorityNotActive);

      await s.authorities.disable(s.admin, rootId);
      await rejectsWith(
        s.authorities.create(s.admin, { name: 'Under Disabled', type: 'intermediate', parentId: rootId, keyBackend: 'local', subject: { commonName: 'Under Disabled' } }),
        Errors.authorityNotActive,
      );
    });

    it('rotates an issuing CA: a successor with a new key and the same name; the predecessor retires and its claims move', async () => {
      const devices = await createCaPair(s, 'Rotating');
      const claims = await createCaPair(s, 'Rotating Claims', { usage: 'claims' });
      const { claim } = await s.claims.create(s.admin, {
        name: 'Rotating line',
        factory: 'Plant 1',
        claimAuthorityId: claims.issuingId,
        deviceAuthorityId: devices.issuingId,
        maxDevices: 5,
        notAfter: new Date(s.clock.now().getTime() + 7 * DAY_MS).toISOString(),
        thingNameTemplate: 'rot-{serial}',
        claimCertificate: { generateKey: true },
      });
      const old = (await s.stored.authorities.findById(devices.issuingId))!;

      const { predecessor, successor } = await s.authorityRotation.rotate(s.admin, devices.issuingId, {});
      assert.equal(successor.subject, old.subject);
      assert.equal(successor.parentId, old.parentId);
      assert.equal(successor.usage, old.usage);
      assert.equal(successor.status, 'active');
      assert.notEqual(successor.publicKeySha256, old.publicKeySha256);
      assert.equal(predecessor.status, 'retiring');
      assert.equal(predecessor.successorId, successor.id);
      assert.equal((await auditEvents(s, 'authority.retiring', old.id))[0].details.successorId, successor.id);
      assert.equal((await s.stored.claims.findById(claim.id))!.deviceAuthorityId, successor.id);
      assert.equal(await s.authorities.currentIssuerId(old.id), successor.id);

      const { csrPem } = deviceKeyAndCsr('svc-rotated');
      await rejectsWith(s.certificates.issue(s.admin, { authorityId: old.id, csr: csrPem, profile: 'device' }), Errors.authorityNotActive);
      const issued = await s.certificates.issue(s.admin, { authorityId: successor.id, csr: csrPem, profile: 'device' });
      await assertOpensslVerifies(s, ssl, issued);

      await rejectsWith(s.authorityRotation.rotate(s.admin, old.id, {}), Errors.authorityNotActive);
      await rejectsWith(s.authorityRotation.rotate(s.admin, devices.rootId, {}), Errors.validation);
    });

    it('leaves an audit chain that verifies', async () => {
      await assertAuditChainVerifies(s);
    });
  });
}
