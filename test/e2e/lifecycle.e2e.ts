import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyBackend } from '../../src/keys/key-spec';
import { KmsStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, binaryBody, drivers, startTestApp, TestApp } from '../support/test-app';

const BACKENDS: { root: KeyBackend; intermediate: KeyBackend }[] = [
  { root: 'local', intermediate: 'local' },
  { root: 'aws-kms', intermediate: 'aws-kms' },
  { root: 'aws-kms', intermediate: 'local' },
  { root: 'local', intermediate: 'aws-kms' },
];

/**
 * The core flow on each database driver and each key backend mix, checked with openssl: root →
 * intermediate → device certificate, revoke, CRL. Same code for SQLite and PostgreSQL, local keys and
 * AWS KMS (the real SDK against the wire-level stand-in).
 */
for (const { driver, skip } of drivers())
for (const backends of BACKENDS) {
  describe(`certificate lifecycle on ${driver}, root on ${backends.root}, intermediate on ${backends.intermediate}`, { skip }, () => {
    let t: TestApp;
    let kms: KmsStandIn;
    const ssl = new OpenSslWorkspace();
    let root: { id: string; certificatePem: string };
    let intermediate: { id: string; certificatePem: string; chainPem: string };
    let device: { id: string; serial: string; fingerprint: string; certificatePem: string; chainPem: string };
    let csr: { csrPem: string; keyFile: string };

    before(async () => {
      kms = await new KmsStandIn().start();
      t = await startTestApp(driver, { kms });
    });
    after(async () => {
      await t?.close();
      await kms?.stop();
      ssl.cleanup();
    });

    it('creates a self-signed root CA that openssl accepts as a CA', async () => {
      const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
        name: 'Acme Root',
        type: 'root',
        keyBackend: backends.root,
        keySpec: 'EC_P384',
        subject: { commonName: 'Acme Root CA', organization: 'Acme', country: 'US' },
        pathLength: 1,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      root = res.body;
      assert.equal(res.body.status, 'active');
      assert.equal(res.body.keyBackend, backends.root);
      assert.match(res.body.fingerprint, /^[0-9a-f]{64}$/);
      const text = ssl.text(root.certificatePem);
      assert.match(text, /CA:TRUE, pathlen:1/);
      assert.match(text, /Certificate Sign, CRL Sign/);
      assert.match(text, /ecdsa-with-SHA384/);
      assert.ok(ssl.verify({ rootPem: root.certificatePem, leafPem: root.certificatePem }).ok);
    });

    it('creates an intermediate under the root, with pathlen 0 and the root’s CRL and AIA URLs', async () => {
      const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
        name: 'Acme Devices',
        type: 'intermediate',
        parentId: root.id,
        keyBackend: backends.intermediate,
        keySpec: 'EC_P256',
        subject: { commonName: 'Acme Device CA', organization: 'Acme' },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      intermediate = res.body;
      assert.equal(res.body.pathLength, 0);
      assert.equal(res.body.keyBackend, backends.intermediate);
      assert.equal(intermediate.chainPem, intermediate.certificatePem + root.certificatePem);
      const text = ssl.text(intermediate.certificatePem);
      assert.match(text, /CA:TRUE, pathlen:0/);
      assert.ok(text.includes(`${t.config.publicBaseUrl}/v1/authorities/${root.id}/crl`));
      const verified = ssl.verify({ rootPem: root.certificatePem, leafPem: intermediate.certificatePem });
      assert.ok(verified.ok, verified.output);
    });

    it('issues a device certificate from an openssl CSR that openssl verifies with -x509_strict', async () => {
      csr = ssl.newCsr('ec:P-256', '/CN=ignored-by-profile/O=Evil Corp');
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
        authorityId: intermediate.id,
        csr: csr.csrPem,
        profile: 'device',
        thingName: 'sensor-0001',
        validityDays: 30,
        metadata: { batch: 'B-42' },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      device = res.body;
      assert.equal(res.body.status, 'active');
      assert.equal(res.body.thingName, 'sensor-0001');
      assert.match(res.body.serial, /^[0-9a-f]{32,40}$/);
      assert.ok(BigInt(`0x${res.body.serial}`) >= 2n ** 120n, 'serial carries at least 128 random bits in practice');
      assert.equal(device.chainPem, intermediate.certificatePem + root.certificatePem);

      const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: intermediate.certificatePem, leafPem: device.certificatePem });
      assert.ok(verified.ok, verified.output);
      const text = ssl.text(device.certificatePem);
      assert.match(text, /Subject: CN ?= ?sensor-0001\n/, 'the profile, not the CSR, decides the subject');
      assert.doesNotMatch(text, /Evil Corp/);
      assert.match(text, /CA:FALSE/);
      assert.match(text, /Key Usage: critical\n\s+Digital Signature\n/);
      assert.match(text, /TLS Web Client Authentication/);
      assert.match(text, /Subject Key Identifier/);
      assert.match(text, /Authority Key Identifier/);
      assert.ok(text.includes(`URI:${t.config.publicBaseUrl}/v1/authorities/${intermediate.id}/crl`));
      assert.ok(text.includes(`CA Issuers - URI:${t.config.publicBaseUrl}/v1/authorities/${intermediate.id}/certificate`));

      // The fingerprint is the SHA-256 of the DER, as openssl computes it.
      const fp = ssl.run(['x509', '-in', ssl.file('device.pem', device.certificatePem), '-noout', '-fingerprint', '-sha256']);
      assert.equal(fp.output.split('=')[1].trim().replace(/:/g, '').toLowerCase(), device.fingerprint);
    });

    it('finds the certificate by every inventory filter and downloads it as PEM', async () => {
      for (const query of [
        { thingName: 'sensor-0001' },
        { serial: device.serial },
        { fingerprint: device.fingerprint },
        { authorityId: intermediate.id, status: 'active' },
        { expiringBefore: new Date(Date.now() + 31 * 86400_000).toISOString() },
      ]) {
        const res = await t.http().get('/v1/certificates').query(query).set(bearer(t.adminKey));
        assert.equal(res.status, 200);
        assert.deepEqual(res.body.items.map((c: { id: string }) => c.id), [device.id], JSON.stringify(query));
      }
      const none = await t.http().get('/v1/certificates').query({ expiringBefore: new Date(Date.now() + 86400_000).toISOString() }).set(bearer(t.adminKey));
      assert.deepEqual(none.body.items, []);

      const pem = await t.http().get(`/v1/certificates/${device.id}`).query({ format: 'pem' }).set(bearer(t.adminKey));
      assert.equal(pem.status, 200);
      assert.match(pem.headers['content-type'], /application\/x-pem-file/);
      assert.equal(pem.text, device.certificatePem + device.chainPem);
    });

    it('serves the CA certificate as DER at the AIA URL', async () => {
      const res = await t.http().get(`/v1/authorities/${intermediate.id}/certificate`).buffer(true).parse(binaryBody);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'application/pkix-cert');
      const der = ssl.file('int.der', res.body as Buffer);
      assert.equal(ssl.run(['x509', '-inform', 'DER', '-in', der, '-noout']).status, 0);
    });

    it('publishes an empty CRL that openssl accepts before any revocation', async () => {
      const crl = await fetchCrl(intermediate.id);
      const verified = ssl.verify({
        rootPem: root.certificatePem,
        intermediatesPem: intermediate.certificatePem,
        leafPem: device.certificatePem,
        crlsDer: [crl, await fetchCrl(root.id)],
      });
      assert.ok(verified.ok, verified.output);
    });

    it('revokes once, refuses a second revocation with 409, and the new CRL makes openssl reject the certificate', async () => {
      const before = await crlNumber(await fetchCrl(intermediate.id));
      const res = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'revoked');
      assert.equal(res.body.revocationReason, 'keyCompromise');

      const again = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'superseded' });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'CERTIFICATE_ALREADY_REVOKED');
      assert.match(again.headers['content-type'], /application\/problem\+json/);

      const crl = await fetchCrl(intermediate.id);
      assert.ok((await crlNumber(crl)) > before, 'CRL number increases');
      const text = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('int.crl', crl), '-noout', '-text']).output;
      assert.ok(text.toLowerCase().replace(/:/g, '').includes(device.serial), 'serial listed in the CRL');
      assert.match(text, /Key Compromise/);

      const verified = ssl.verify({
        rootPem: root.certificatePem,
        intermediatesPem: intermediate.certificatePem,
        leafPem: device.certificatePem,
        crlsDer: [crl, await fetchCrl(root.id)],
      });
      assert.equal(verified.ok, false);
      assert.match(verified.output, /certificate revoked/);
    });

    it('refuses a new certificate for the compromised key', async () => {
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
        authorityId: intermediate.id,
        csr: csr.csrPem,
        profile: 'device',
        thingName: 'sensor-0001',
      });
      assert.equal(res.status, 422);
      assert.equal(res.body.code, 'KEY_NOT_ALLOWED');
    });

    it('stops issuing from a disabled authority but keeps serving its CRL', async () => {
      const disabled = await t.http().post(`/v1/authorities/${intermediate.id}/disable`).set(bearer(t.adminKey));
      assert.equal(disabled.status, 200);
      assert.equal(disabled.body.status, 'disabled');
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
        authorityId: intermediate.id,
        csr: ssl.newCsr('ec:P-256', '/CN=sensor-0002').csrPem,
        profile: 'device',
      });
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'AUTHORITY_NOT_ACTIVE');
      assert.ok((await fetchCrl(intermediate.id)).length > 0);
    });

    it('keeps a verifiable audit chain of everything above', async () => {
      const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
      assert.equal(verify.status, 200);
      assert.deepEqual({ ok: verify.body.ok, firstBrokenSeq: verify.body.firstBrokenSeq }, { ok: true, firstBrokenSeq: null });
      const events = await t.http().get('/v1/audit').query({ limit: 500 }).set(bearer(t.adminKey));
      const actions = events.body.items.map((e: { action: string }) => e.action);
      for (const action of ['api-key.created', 'authority.created', 'certificate.issued', 'certificate.revoked', 'authority.disabled']) {
        assert.ok(actions.includes(action), `audit has ${action}`);
      }
      assert.equal(verify.body.checked, actions.length);
    });

    it('calls KMS only to make keys and to sign: the public key is read once per key', () => {
      const kmsCas = [backends.root, backends.intermediate].filter((b) => b === 'aws-kms').length;
      assert.equal(kms.calls.get('CreateKey') ?? 0, kmsCas);
      assert.equal(kms.calls.get('GetPublicKey') ?? 0, kmsCas);
      if (kmsCas > 0) assert.ok((kms.calls.get('Sign') ?? 0) >= 2, 'certificates and CRLs were signed in KMS');
      else assert.equal(kms.calls.get('Sign') ?? 0, 0);
    });

    async function fetchCrl(authorityId: string): Promise<Buffer> {
      const res = await t.http().get(`/v1/authorities/${authorityId}/crl`).buffer(true).parse(binaryBody);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'application/pkix-crl');
      return res.body as Buffer;
    }

    async function crlNumber(der: Buffer): Promise<number> {
      const out = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file(`n-${Math.random()}.crl`, der), '-noout', '-crlnumber']).output;
      return parseInt(out.split('=')[1], 16);
    }
  });
}
