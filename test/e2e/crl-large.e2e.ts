import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CertificateEntity } from '../../src/database/entities/certificate.entity';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { REVOCATION_REASONS } from '../../src/pki/crl';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, binaryBody, drivers, startTestApp, TestApp } from '../support/test-app';

/** Revoked certificates seeded straight into the database (issuing them over HTTP would take minutes). */
const REVOKED = 20_000;

function row(authorityId: string, status: string, notAfter: string, i: number): CertificateEntity {
  const now = new Date().toISOString();
  return Object.assign(new CertificateEntity(), {
    id: randomUUID(),
    authorityId,
    serial: `5${randomBytes(20).toString('hex').slice(1)}`,
    fingerprint: randomBytes(32).toString('hex'),
    profile: 'device',
    subject: `CN=seeded-${i}`,
    thingName: null,
    status,
    notBefore: now,
    notAfter,
    issuedAt: now,
    publicKeySha256: randomBytes(32).toString('hex'),
    keyDescription: 'ec:P-256',
    certificateDer: 'AA==',
    metadata: null,
    validityClamped: false,
    revokedAt: status === 'revoked' ? now : null,
    revocationReason: status === 'revoked' ? REVOCATION_REASONS[i % REVOCATION_REASONS.length] : null,
    iotStatus: 'none',
    iotLastError: null,
    iotThing: null,
    claimId: null,
    replacesId: null,
    replacedById: null,
    supersededAt: null,
    hardwareAttestation: null,
    origin: 'issued',
    importedChain: null,
  });
}

/** A CRL of tens of thousands of entries generated through the service (docs/architecture.md "CRLs"). */
for (const { driver, skip } of drivers()) {
  describe(`large CRL on ${driver}`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let caId: string;
    const expected = new Set<string>();

    before(async () => {
      t = await startTestApp(driver);
      caId = (await createCaPair(t)).intermediate.id;
      const future = new Date(Date.now() + 86_400_000).toISOString();
      const past = new Date(Date.now() - 1000).toISOString();
      const rows = Array.from({ length: REVOKED }, (_, i) => row(caId, 'revoked', future, i));
      for (const r of rows) expected.add(r.serial);
      // Not listed: active certificates, and revoked ones that have expired.
      const others = [...Array.from({ length: 500 }, (_, i) => row(caId, 'active', future, i)), ...Array.from({ length: 500 }, (_, i) => row(caId, 'revoked', past, i))];
      const db = t.app.get(TypeOrmTransactions);
      await db.run(async () => {
        await db.insertMany(CertificateEntity, [...rows, ...others]);
        await db.sql('UPDATE authorities SET revocation_count = revocation_count + ? WHERE id = ?', [REVOKED + 500, caId]);
      });
      // And one revoked through the API.
      const device = await issueDevice(t, ssl, caId, 'large-crl-thing');
      const revoked = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(revoked.status, 200);
      expected.add(device.serial);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('answers /healthz while the CRL is built, and the CRL lists exactly the revoked, unexpired serials', async () => {
      // Stale again, so the GET below rebuilds the CRL.
      await t.app.get(TypeOrmTransactions).run(() => t.app.get(TypeOrmTransactions).sql('UPDATE authorities SET revocation_count = revocation_count + 1 WHERE id = ?', [caId]));
      let crlDone = false;
      const crl = t
        .http()
        .get(`/v1/authorities/${caId}/crl`)
        .buffer(true)
        .parse(binaryBody)
        .then((res) => ((crlDone = true), res));
      const healthLatencies: number[] = [];
      let answeredDuringBuild = 0;
      while (!crlDone) {
        const started = performance.now();
        const health = await t.http().get('/healthz');
        healthLatencies.push(performance.now() - started);
        assert.equal(health.status, 200);
        if (!crlDone) answeredDuringBuild++;
      }
      const res = await crl;
      assert.equal(res.status, 200);
      assert.ok(answeredDuringBuild >= 1, 'a /healthz request was answered while the CRL was being built');
      assert.ok(Math.max(...healthLatencies) < 2000, `no /healthz waited 2 s (max ${Math.max(...healthLatencies).toFixed(0)} ms)`);

      const der = res.body as Buffer;
      const caPem = (await t.http().get(`/v1/authorities/${caId}`).set(bearer(t.adminKey))).body.certificatePem as string;
      const verify = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('large.crl', der), '-CAfile', ssl.file('ca.pem', caPem), '-noout']);
      assert.match(verify.output, /verify OK/, verify.output);
      const textFile = ssl.file('large.txt', '');
      assert.equal(ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('large.crl'), '-noout', '-text', '-out', textFile]).status, 0);
      const listed = [...readFileSync(textFile, 'utf8').matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1].toLowerCase());
      assert.equal(listed.length, expected.size);
      assert.deepEqual(new Set(listed), expected);
    });

    it('serves the same CRL again without rebuilding it', async () => {
      const a = await t.http().get(`/v1/authorities/${caId}/crl`).buffer(true).parse(binaryBody);
      const b = await t.http().get(`/v1/authorities/${caId}/crl`).buffer(true).parse(binaryBody);
      assert.deepEqual(a.body, b.body);
    });
  });
}
