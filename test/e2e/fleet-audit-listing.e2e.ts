import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomUUID, sign, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { signCertificate } from '../../src/pki/certificate';
import { keyIdentifier } from '../../src/pki/extensions';
import { describeCertificate } from '../../src/pki/issuance';
import { findProfile } from '../../src/pki/profiles';
import { randomSerial } from '../../src/pki/serial';
import { IotStandIn } from '../../tools/standins';
import { subjectDer } from '../../tools/standins/iot/der-reader';
import { eventually } from '../support/eventually';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

const TOTAL = 10_000;
const UNKNOWN = 10; // in AWS IoT only
const REVOKED = 100; // revoked here…
const DRIFTED = 40; // …of which still ACTIVE in AWS IoT
const PAGE_SIZE = 250;

/**
 * The fleet audit's AWS checks read AWS IoT by listing (ListCertificatesByCA, FLEET_AUDIT_LIST_PAGE_SIZE a page), not
 * one DescribeCertificate per certificate (docs/operations.md, "Drift audit by listing"): 10,000 certificates cost
 * ceil(10,000 / page size) calls (plus a few), and the findings are what they were (drift, unknown certificates).
 * The certificates are seeded cheaply: rows inserted directly, registered in the stand-in directly.
 */
for (const { driver, skip } of drivers())
describe(`fleet audit by listing on ${driver}`, { skip }, () => {
  let iot: IotStandIn;
  let t: TestApp;
  let drifted: Set<string>;
  let unknown: Set<string>;

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp(driver, { iot, env: { FLEET_AUDIT_LIST_PAGE_SIZE: String(PAGE_SIZE), FLEET_AUDIT_INTERVAL_HOURS: '0' } });
    const root = await admin('/v1/authorities', { name: 'Listing Root', type: 'root', subject: { commonName: 'Listing Root CA' } });
    const ca = await admin('/v1/authorities', { name: 'Listing CA', type: 'intermediate', parentId: root.id, subject: { commonName: 'Listing CA' } });
    await admin(`/v1/authorities/${ca.id}/iot-registration`, { certificateMode: 'SNI_ONLY', deviceRegistration: 'none' });
    ({ drifted, unknown } = await seed(ca));
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
  });

  async function admin(path: string, body: object) {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
    assert.ok([200, 201, 202].includes(res.status), `${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  /** TOTAL device certificates under the CA in AWS IoT; all but UNKNOWN of them in our database, REVOKED of those revoked here. */
  async function seed(ca: { id: string; fingerprint: string; certificatePem: string }) {
    const caX509 = new X509Certificate(ca.certificatePem);
    const issuer = { name: subjectDer(caX509), keyId: keyIdentifier(caX509.publicKey.export({ type: 'spki', format: 'der' })), notBefore: new Date(caX509.validFrom), notAfter: new Date(caX509.validTo) };
    // One device key for all (cheap); the stand-in does not check a test hook's signatures.
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
    const now = new Date();
    const rows: unknown[][] = [];
    const drifted = new Set<string>();
    const unknown = new Set<string>();
    for (let i = 0; i < TOTAL; i++) {
      const name = `listed-${i}`;
      const serial = randomSerial();
      const { tbs } = describeCertificate({
        kind: 'end-entity',
        issuer,
        urls: { crl: 'http://listing.invalid/crl', caCertificate: 'http://listing.invalid/ca', ocsp: 'http://listing.invalid/ocsp' },
        profile: findProfile('device'),
        names: { subject: { commonName: name }, dnsNames: [], ipAddresses: [], thingName: name },
        validityDays: 365,
        subjectPublicKeyInfo: spki,
        now,
        backdateSeconds: 60,
      });
      const der = await signCertificate({ serial, ...tbs }, { algorithm: 'ECDSA_SHA_256', sign: async (data: Buffer) => sign('sha256', data, keys.privateKey) });
      const x509 = new X509Certificate(der);
      const fingerprint = createHash('sha256').update(der).digest('hex');
      const revokedHere = i < REVOKED;
      const awsStatus = revokedHere && i >= DRIFTED ? 'REVOKED' : 'ACTIVE';
      await iot.registerForeignCertificate(ca.fingerprint, { certificatePem: x509.toString(), status: awsStatus });
      if (i >= TOTAL - UNKNOWN) {
        unknown.add(fingerprint);
        continue;
      }
      if (revokedHere && awsStatus === 'ACTIVE') drifted.add(fingerprint);
      rows.push([
        randomUUID(), ca.id, serial.toString('hex'), fingerprint, 'device', `CN=${name}`, name, revokedHere ? 'revoked' : 'active',
        new Date(x509.validFrom).toISOString(), new Date(x509.validTo).toISOString(), now.toISOString(), createHash('sha256').update(spki).digest('hex'), 'EC-P256',
        der.toString('base64'), revokedHere ? now.toISOString() : null, revokedHere ? 'keyCompromise' : null, revokedHere ? 'revoked' : 'active',
      ]);
    }
    const columns = 'id, authority_id, serial, fingerprint, profile, subject, thing_name, status, not_before, not_after, issued_at, public_key_sha256, key_description, certificate_der, revoked_at, revocation_reason, iot_status';
    const db = t.app.get(TypeOrmTransactions);
    for (let i = 0; i < rows.length; i += 500) {
      const batch = rows.slice(i, i + 500);
      const placeholders = batch.map((r) => `(${r.map(() => '?').join(', ')})`).join(', ');
      await db.runGrouped(() => db.sql(`INSERT INTO certificates (${columns}) VALUES ${placeholders}`, batch.flat()));
    }
    return { drifted, unknown };
  }

  it(`audits ${TOTAL} certificates in at most ceil(${TOTAL} / ${PAGE_SIZE}) + 3 AWS IoT calls, with the same findings`, async () => {
    const before = new Map(iot.calls);
    const started = await admin('/v1/fleet/audits', { policySample: 0 });
    let audit: { status: string; summary: { byType: Record<string, number> } | null } = started;
    await eventually('the audit finished', async () => {
      audit = (await t.http().get(`/v1/fleet/audits/${started.id}`).set(bearer(t.adminKey))).body;
      return audit.status !== 'running';
    }, 120_000, 100);
    assert.equal(audit.status, 'done', JSON.stringify(audit));

    const calls = [...iot.calls].map(([op, n]) => [op, n - (before.get(op) ?? 0)] as const).filter(([, n]) => n > 0);
    const total = calls.reduce((sum, [, n]) => sum + n, 0);
    assert.ok(total <= Math.ceil(TOTAL / PAGE_SIZE) + 3, `AWS IoT calls: ${JSON.stringify(calls)}`);
    assert.equal(calls.find(([op]) => op === 'DescribeCertificate')?.[1] ?? 0, 0, 'no DescribeCertificate per certificate');
    // The stand-in counts its own calls too (GET /_standin/stats).
    const stats = (await fetch(`${iot.endpoint}/_standin/stats`).then((r) => r.json())) as { calls: Record<string, number> };
    assert.equal(stats.calls.ListCertificatesByCA - (before.get('ListCertificatesByCA') ?? 0), Math.ceil(TOTAL / PAGE_SIZE), 'one listing serves both checks');

    const findings: { type: string; resourceId: string; details: Record<string, unknown> }[] = [];
    let cursor: string | undefined;
    do {
      const page = (await t.http().get(`/v1/fleet/audits/${started.id}`).query({ limit: 500, ...(cursor ? { cursor } : {}) }).set(bearer(t.adminKey))).body;
      findings.push(...page.findings);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const ofType = (type: string) => new Set(findings.filter((f) => f.type === type).map((f) => f.resourceId));
    assert.deepEqual(ofType('IOT_STATUS_DRIFT'), drifted, 'revoked here, ACTIVE in AWS IoT: each one found');
    assert.deepEqual(ofType('IOT_UNKNOWN_CERTIFICATE'), unknown, 'ACTIVE in AWS IoT, never issued here: each one found');
    const drift = findings.find((f) => f.type === 'IOT_STATUS_DRIFT')!;
    assert.deepEqual([drift.details.awsStatus, drift.details.expected, drift.details.here], ['ACTIVE', 'REVOKED', 'revoked']);
  });
});
