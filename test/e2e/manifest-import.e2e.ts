import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { temporaryDatabase } from '../../scripts/lib/temporary-database';
import { IotStandIn } from '../../tools/standins';
import { eventually } from '../support/eventually';
import { TestVendor } from '../support/secure-element-manifests';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * Secure-element manifest import (docs/secure-elements.md), over HTTP against the real app and the AWS IoT stand-in
 * through the real SDK: a test-made 10,000-entry manifest in the Microchip format imports with its progress visible while
 * it runs; an entry with a broken signature and one whose certificate chains to another signer are refused by index
 * while the rest import; the same upload again changes nothing; every imported certificate is registered with
 * RegisterCertificateWithoutCA within the pacing budget (the stand-in's request log); a revocation reaches the stand-in.
 */
const ENTRIES = 10_000;
const BROKEN_SIGNATURE = 1234;
const OTHER_SIGNER = 5678;
/** RegisterCertificateWithoutCA: the service's budget and the stand-in's quota (raised from AWS's 10/s to keep the test short). */
const RATE = 400;

for (const { driver, skip } of drivers())
describe(`secure-element manifest import on ${driver}`, { skip }, () => {
  let iot: IotStandIn;
  let t: TestApp;
  let vendor: TestVendor;
  let manifest: Buffer;

  before(async () => {
    iot = await new IotStandIn({ operationTps: { RegisterCertificateWithoutCA: RATE } }).start();
    t = await startTestApp(driver, {
      iot,
      env: {
        IOT_RATE_LIMITS: `RegisterCertificateWithoutCA=${RATE}`,
        OUTBOX_POLL_MS: '20',
        OUTBOX_BATCH_SIZE: '40',
        MANIFEST_BATCH_SIZE: '250',
        MANIFEST_POLL_MS: '200',
      },
    });
    vendor = await TestVendor.create();
    const chunks: Buffer[] = [];
    for await (const chunk of vendor.manifest(ENTRIES, { [BROKEN_SIGNATURE]: { breakSignature: true }, [OTHER_SIGNER]: { foreignIssuer: true } })) chunks.push(chunk);
    manifest = Buffer.concat(chunks);
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
  });

  function upload(body: Buffer, signer = vendor.signerCertificateBase64) {
    return t.http().post('/v1/manifests').set(bearer(t.adminKey)).set('Content-Type', 'application/json').set('X-Manifest-Signer-Certificate', signer).send(body.toString('utf8'));
  }

  let importId: string;

  it('imports 10,000 entries with progress visible while it runs, refusing the two bad entries by index', async () => {
    const started = await upload(manifest);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.body.total, ENTRIES);
    importId = started.body.id;

    const seen: { status: string; processed: number }[] = [];
    let final: Record<string, unknown> | undefined;
    const deadline = Date.now() + 420_000;
    while (Date.now() < deadline) {
      const res = await t.http().get(`/v1/manifests/${importId}`).set(bearer(t.adminKey));
      assert.equal(res.status, 200);
      seen.push({ status: res.body.status, processed: res.body.processed });
      if (res.body.status === 'done' || res.body.status === 'failed') {
        final = res.body;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(final, 'the import finished');
    assert.equal(final.status, 'done', JSON.stringify(final));
    const midway = seen.filter((s) => s.status === 'running' && s.processed > 0 && s.processed < ENTRIES);
    assert.ok(midway.length > 0, `progress was visible while it ran: ${JSON.stringify(seen.slice(0, 20))}`);
    // Progress only moves forward.
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].processed >= seen[i - 1].processed);

    assert.equal(final.processed, ENTRIES);
    assert.equal(final.imported, ENTRIES - 2);
    assert.equal(final.skipped, 0);
    assert.equal(final.failed, 2);
    const failures = final.failures as { index: number; code: string; uniqueId: string }[];
    assert.deepEqual(
      failures.map((f) => [f.index, f.code, f.uniqueId]),
      [
        [BROKEN_SIGNATURE, 'BAD_SIGNATURE', TestVendor.uniqueId(BROKEN_SIGNATURE)],
        [OTHER_SIGNER, 'CHAIN_INVALID', TestVendor.uniqueId(OTHER_SIGNER)],
      ],
    );

    // Pre-provisioned identities are in the inventory, searchable like any certificate; the refused ones are not.
    const found = await t.http().get('/v1/certificates').query({ thingName: TestVendor.uniqueId(42) }).set(bearer(t.adminKey));
    assert.equal(found.status, 200);
    assert.equal(found.body.items.length, 1);
    const [item] = found.body.items;
    assert.equal(item.origin, 'imported');
    assert.equal(item.profile, 'pre-provisioned');
    const detail = await t.http().get(`/v1/certificates/${item.id}`).set(bearer(t.adminKey));
    assert.equal(detail.status, 200);
    assert.equal(detail.body.metadata.uniqueId, TestVendor.uniqueId(42));
    assert.equal(detail.body.metadata.manifestImportId, importId);
    assert.match(detail.body.chainPem, /BEGIN CERTIFICATE/, 'the chain the manifest gave');
    const bySigner = await t.http().get('/v1/certificates').query({ authorityId: item.authorityId, limit: 5 }).set(bearer(t.adminKey));
    assert.equal(bySigner.body.items.length, 5);
    for (const refused of [BROKEN_SIGNATURE, OTHER_SIGNER]) {
      const none = await t.http().get('/v1/certificates').query({ thingName: TestVendor.uniqueId(refused) }).set(bearer(t.adminKey));
      assert.equal(none.body.items.length, 0);
    }

    // Audited: the start, one event per batch, the end.
    const audit = await t.http().get('/v1/audit').query({ targetId: importId, limit: 500 }).set(bearer(t.adminKey));
    assert.equal(audit.status, 200);
    const actions = (audit.body.items as { action: string }[]).map((e) => e.action);
    assert.ok(actions.includes('manifest.import-started'));
    assert.ok(actions.includes('manifest.import-finished'));
    assert.equal(actions.filter((a) => a === 'manifest.batch-imported').length, ENTRIES / 250);
  });

  it('answers the same upload again with the same import and changes nothing', async () => {
    const before = await t.http().get(`/v1/manifests/${importId}`).set(bearer(t.adminKey));
    const again = await upload(manifest);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.id, importId);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await t.http().get(`/v1/manifests/${importId}`).set(bearer(t.adminKey));
    assert.deepEqual(after.body, before.body);
    const list = await t.http().get('/v1/manifests').set(bearer(t.adminKey));
    assert.equal(list.body.items.length, 1);
    const one = await t.http().get('/v1/certificates').query({ thingName: TestVendor.uniqueId(7) }).set(bearer(t.adminKey));
    assert.equal(one.body.items.length, 1);
  });

  it('refuses an upload that is not a manifest, or without a usable signer certificate', async () => {
    const notArray = await upload(Buffer.from('{"a": 1}'));
    assert.equal(notArray.status, 400);
    assert.equal(notArray.body.code, 'INVALID_MANIFEST');
    const noSigner = await upload(Buffer.from('[]'), 'bm90IGEgY2VydGlmaWNhdGU=');
    assert.equal(noSigner.status, 422);
    assert.equal(noSigner.body.code, 'INVALID_MANIFEST_SIGNER');
    const auditor = await t.http().get('/v1/manifests/00000000-0000-4000-8000-000000000000').set(bearer(t.adminKey));
    assert.equal(auditor.status, 404);
    assert.equal(auditor.body.code, 'MANIFEST_IMPORT_NOT_FOUND');
  });

  it('registers every imported certificate with RegisterCertificateWithoutCA within its pacing budget', async () => {
    const registeredIds = () =>
      new Set(
        iot
          .requests()
          .filter((r) => r.operation === 'RegisterCertificateWithoutCA' && r.outcome === 'ok')
          .map((r) => r.certificateId),
      );
    await eventually('every imported certificate is registered', () => registeredIds().size === ENTRIES - 2, 180_000, 500);
    const calls = iot.requests().filter((r) => r.operation === 'RegisterCertificateWithoutCA');
    // Paced by the service: the stand-in, which enforces the same quota, never had to throttle it.
    assert.equal(iot.throttledByOperation.get('RegisterCertificateWithoutCA') ?? 0, 0, 'no ThrottlingException');
    assert.equal(calls.length, ENTRIES - 2, 'one call per certificate');
    // No second of calls above the rate plus the budget's burst (half a second's worth).
    let worst = 0;
    for (let i = 0, j = 0; i < calls.length; i++) {
      while (calls[i].at - calls[j].at >= 1000) j++;
      worst = Math.max(worst, i - j + 1);
    }
    assert.ok(worst <= RATE + RATE / 2, `at most ${RATE * 1.5} calls in any second, saw ${worst}`);
    const spanSeconds = (calls[calls.length - 1].at - calls[0].at) / 1000;
    assert.ok(spanSeconds >= (ENTRIES - 2 - RATE / 2) / RATE - 1, `paced over ${spanSeconds}s`);
    // And the inventory shows them active in AWS IoT.
    const sample = await t.http().get('/v1/certificates').query({ thingName: TestVendor.uniqueId(9999) }).set(bearer(t.adminKey));
    await eventually('the inventory shows it active in AWS IoT', async () => {
      const detail = await t.http().get(`/v1/certificates/${sample.body.items[0].id}`).set(bearer(t.adminKey));
      return detail.body.iot.status === 'active';
    });
  });

  it('revokes an imported identity: REVOKED in the stand-in, audited, on no CRL of ours', async () => {
    const found = await t.http().get('/v1/certificates').query({ thingName: TestVendor.uniqueId(77) }).set(bearer(t.adminKey));
    const { id, fingerprint, authorityId } = found.body.items[0];
    const revoked = await t.http().post(`/v1/certificates/${id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.status, 'revoked');
    await eventually('UpdateCertificate REVOKED reached the stand-in', () =>
      iot.requests().some((r) => r.operation === 'UpdateCertificate' && r.certificateId === fingerprint && r.status === 'REVOKED' && r.outcome === 'ok'),
    );
    await eventually('the inventory shows it revoked in AWS IoT', async () => {
      const detail = await t.http().get(`/v1/certificates/${id}`).set(bearer(t.adminKey));
      return detail.body.iot.status === 'revoked';
    });
    const audit = await t.http().get('/v1/audit').query({ targetId: id }).set(bearer(t.adminKey));
    assert.ok((audit.body.items as { action: string }[]).some((e) => e.action === 'certificate.revoked'));
    // The signer id is no authority of ours: there is no CRL for it.
    const crl = await t.http().get(`/v1/authorities/${authorityId}/crl`);
    assert.equal(crl.status, 404);
  });
});

for (const { driver, skip } of drivers())
describe(`a manifest import resumes after a restart on ${driver}`, { skip }, () => {
  it('stops with the process and resumes at the first uncommitted entry: each entry committed once', async () => {
    const COUNT = 3000;
    const vendor = await TestVendor.create('Resume Vendor');
    const chunks: Buffer[] = [];
    for await (const chunk of vendor.manifest(COUNT, { 2500: { breakSignature: true } })) chunks.push(chunk);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-manifest-resume-'));
    const db = await temporaryDatabase(driver);
    const env = { FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex'), MANIFEST_BATCH_SIZE: '50', MANIFEST_POLL_MS: '100' };
    let t: TestApp | undefined;
    try {
      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env });
      const started = await t.http().post('/v1/manifests?registration=none').set(bearer(t.adminKey)).set('Content-Type', 'application/json')
        .set('X-Manifest-Signer-Certificate', vendor.signerCertificateBase64).send(Buffer.concat(chunks).toString('utf8'));
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const id = started.body.id as string;
      const app = t;
      await eventually('the import is under way', async () => (await app.http().get(`/v1/manifests/${id}`).set(bearer(app.adminKey))).body.processed >= 200, 60_000, 5);
      await t.close(); // graceful: the batch in flight commits, the rest waits on disk
      t = undefined;
      const stored = fs.readdirSync(path.join(dataDir, 'manifests'));
      assert.deepEqual(stored, [`${id}.json`], 'the upload stays in the data directory until the import is done');

      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env });
      const resumedApp = t;
      const midway = await t.http().get(`/v1/manifests/${id}`).set(bearer(t.adminKey));
      assert.ok(midway.body.processed > 0 && midway.body.processed < COUNT, `stopped midway: ${midway.body.processed}`);
      assert.equal(midway.body.processed % 50, 0, 'a whole number of batches was committed');
      await eventually('the import resumes and finishes', async () => (await resumedApp.http().get(`/v1/manifests/${id}`).set(bearer(resumedApp.adminKey))).body.status === 'done', 120_000, 100);
      const done = await t.http().get(`/v1/manifests/${id}`).set(bearer(t.adminKey));
      assert.equal(done.body.processed, COUNT);
      assert.equal(done.body.imported, COUNT - 1, 'every entry imported once, none twice (none skipped as already there)');
      assert.equal(done.body.skipped, 0);
      assert.deepEqual((done.body.failures as { index: number }[]).map((f) => f.index), [2500]);
      const audit = await t.http().get('/v1/audit').query({ targetId: id, limit: 500 }).set(bearer(t.adminKey));
      const batches = (audit.body.items as { action: string }[]).filter((e) => e.action === 'manifest.batch-imported').length;
      assert.equal(batches, COUNT / 50, 'each batch committed (and audited) exactly once across the restart');
      assert.deepEqual(fs.readdirSync(path.join(dataDir, 'manifests')), [], 'the upload is removed once the import is done');
    } finally {
      await t?.close();
      await db.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
