import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { AuthorityLeafIssuance1796553572584 as PostgresLeafIssuance } from '../../migrations/postgres/1796553572584-AuthorityLeafIssuance';
import { AuthorityLeafIssuance1796553572584 as SqliteLeafIssuance } from '../../migrations/sqlite/1796553572584-AuthorityLeafIssuance';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { temporaryDatabase } from '../../scripts/lib/temporary-database';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/**
 * A root CA's key certifies intermediates, not devices: end-entity certificates straight from a root are refused
 * (422 AUTHORITY_IS_ROOT) unless the root was created with allowLeafIssuance: true — on every issuing route, claim
 * certificates included. Intermediates issue by default; one created with allowLeafIssuance: false certifies only CAs.
 */
for (const { driver, skip } of drivers())
describe(`end-entity issuance from roots (${driver})`, { skip }, () => {
  const ssl = new OpenSslWorkspace();
  let t: TestApp;
  let root: Body;
  let intermediate: Body;

  before(async () => {
    t = await startTestApp(driver);
    root = await create({ name: 'Root', type: 'root', subject: { commonName: 'Leafless Root' } });
    intermediate = await create({ name: 'Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Issuing CA' } });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function create(body: object): Promise<Body> {
    const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send(body);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }

  function issue(authorityId: string, thingName: string) {
    return t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId, csr: ssl.newCsr('ec:P-256', `/CN=${thingName}`).csrPem, profile: 'device', thingName });
  }

  function claim(claimAuthorityId: string, deviceAuthorityId: string) {
    return t.http().post('/v1/claims').set(bearer(t.adminKey)).send({
      name: 'c', factory: 'F', claimAuthorityId, deviceAuthorityId, maxDevices: 1,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'r-{serial}', claimCertificate: { generateKey: true },
    });
  }

  function expectProblem(res: Response, status: number, code: string): void {
    assert.equal(res.status, status, res.text);
    assert.match(res.headers['content-type'], /^application\/problem\+json/);
    assert.equal(res.body.code, code);
  }

  async function certificateCount(): Promise<number> {
    return (await t.http().get('/v1/certificates?limit=500').set(bearer(t.adminKey))).body.items.length;
  }

  it('shows allowLeafIssuance: false on a root and true on an intermediate, by default', async () => {
    assert.equal(root.allowLeafIssuance, false);
    assert.equal(intermediate.allowLeafIssuance, true);
    const read = await t.http().get(`/v1/authorities/${root.id}`).set(bearer(t.adminKey));
    assert.equal(read.body.allowLeafIssuance, false);
  });

  it('refuses a device certificate straight from a root with 422 AUTHORITY_IS_ROOT, and issues nothing', async () => {
    const before = await certificateCount();
    const res = await issue(root.id, 'from-root');
    expectProblem(res, 422, 'AUTHORITY_IS_ROOT');
    assert.match(res.body.detail, /issue under one of its intermediates/);
    assert.equal(await certificateCount(), before);
    assert.equal((await issue(intermediate.id, 'from-intermediate')).status, 201);
  });

  it('refuses a root as a claim’s device CA or claim CA (claim certificates follow the same rule)', async () => {
    const claimsRoot = await create({ name: 'Claims Root', type: 'root', usage: 'claims', subject: { commonName: 'Claims Root' } });
    const claimsIntermediate = await create({ name: 'Claims', type: 'intermediate', parentId: claimsRoot.id, usage: 'claims', subject: { commonName: 'Claims CA' } });
    expectProblem(await claim(claimsRoot.id, intermediate.id), 422, 'AUTHORITY_IS_ROOT');
    expectProblem(await claim(claimsIntermediate.id, root.id), 422, 'AUTHORITY_IS_ROOT');
    assert.equal((await claim(claimsIntermediate.id, intermediate.id)).status, 201);
  });

  it('issues from a root created with allowLeafIssuance: true; openssl verifies the leaf against the root alone', async () => {
    const direct = await create({ name: 'Direct Root', type: 'root', allowLeafIssuance: true, subject: { commonName: 'Direct Root' } });
    assert.equal(direct.allowLeafIssuance, true);
    const res = await issue(direct.id, 'direct-leaf');
    assert.equal(res.status, 201, res.text);
    const verified = ssl.verify({ rootPem: direct.certificatePem, leafPem: res.body.certificatePem });
    assert.ok(verified.ok, verified.output);
    const directClaims = await create({ name: 'Direct Claims Root', type: 'root', usage: 'claims', allowLeafIssuance: true, subject: { commonName: 'Direct Claims Root' } });
    assert.equal((await claim(directClaims.id, direct.id)).status, 201);
    const audit = await t.http().get(`/v1/audit?action=authority.created&targetId=${direct.id}`).set(bearer(t.adminKey));
    assert.equal(audit.body.items[0].details.allowLeafIssuance, true);
  });

  it('lets an intermediate certify only CAs (allowLeafIssuance: false), kept by its rotation successor', async () => {
    const policyCa = await create({ name: 'Policy', type: 'intermediate', parentId: root.id, allowLeafIssuance: false, subject: { commonName: 'Policy CA' } });
    assert.equal(policyCa.allowLeafIssuance, false);
    expectProblem(await issue(policyCa.id, 'from-policy-ca'), 422, 'LEAF_ISSUANCE_NOT_ALLOWED');
    const issuing = await create({ name: 'Under policy', type: 'intermediate', parentId: policyCa.id, subject: { commonName: 'Under Policy CA' } });
    assert.equal((await issue(issuing.id, 'under-policy')).status, 201);
    const rotated = await t.http().post(`/v1/authorities/${policyCa.id}/rotate`).set(bearer(t.adminKey)).send({});
    assert.equal(rotated.status, 201, rotated.text);
    assert.equal(rotated.body.successor.allowLeafIssuance, false);
  });

  it('refuses an allowLeafIssuance that is not a boolean (400)', async () => {
    const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'x', type: 'root', allowLeafIssuance: 'yes', subject: { commonName: 'x' } });
    expectProblem(res, 400, 'VALIDATION_FAILED');
  });
});

for (const { driver, skip } of drivers())
describe(`upgrading to allow_leaf_issuance (${driver})`, { skip }, () => {
  it('keeps every existing authority issuing (a claimed root with no certificates yet, a rotation successor); new roots default to false', async () => {
    const db = await temporaryDatabase(driver);
    try {
      const options = dataSourceOptions(db.config);
      const migrations = options.migrations as (new () => unknown)[];
      const at = migrations.indexOf(driver === 'sqlite' ? SqliteLeafIssuance : PostgresLeafIssuance);
      assert.ok(at > 0);
      const before = new DataSource({ ...options, migrations: migrations.slice(0, at) } as typeof options);
      await before.initialize();
      await before.runMigrations();
      const authority = (id: string, type: string, parent: string | null) =>
        before.query(
          `INSERT INTO authorities (id, name, type, parent_id, status, key_backend, key_spec, key_ref, public_key_sha256, subject, serial, fingerprint, not_before, not_after, certificate_der, created_at)
           VALUES ('${id}', '${id}', '${type}', ${parent ? `'${parent}'` : 'NULL'}, 'active', 'local', 'EC_P256', 'k-${id}', 'pk-${id}', 'CN=${id}', '01', 'fp-${id}', '2026-01-01T00:00:00Z', '2036-01-01T00:00:00Z', 'AA==', '2026-01-01T00:00:00.000Z')`,
        );
      await authority('root-that-issued', 'root', null);
      await authority('root-idle', 'root', null);
      await authority('intermediate', 'intermediate', 'root-idle');
      // A root that a claim issues device certificates from, but that has not issued any yet.
      await authority('root-claimed', 'root', null);
      // A root made by rotation before the upgrade: its predecessor points at it, it has issued nothing.
      await authority('root-successor', 'root', null);
      await before.query(`UPDATE authorities SET successor_id = 'root-successor' WHERE id = 'root-idle'`);
      await before.query(
        `INSERT INTO claims (id, name, factory, status, claim_authority_id, device_authority_id, profile, max_devices, not_before, not_after, thing_name_template, claim_certificate_id, created_at)
         VALUES ('claim1', 'claim1', 'f', 'active', 'root-that-issued', 'root-claimed', 'device', 10, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', '{serial}', 'c1', '2026-01-01T00:00:00.000Z')`,
      );
      await before.query(
        `INSERT INTO certificates (id, authority_id, serial, fingerprint, profile, subject, status, not_before, not_after, issued_at, public_key_sha256, key_description, certificate_der)
         VALUES ('c1', 'root-that-issued', '02', 'fp-c1', 'device', 'CN=d', 'active', '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', '2026-01-01T00:00:00.000Z', 'pk-c1', 'EC-P256', 'AA==')`,
      );
      await before.destroy();

      const after = new DataSource(options);
      await after.initialize();
      await after.runMigrations();
      // A root created after the upgrade, without naming the column, gets the new default.
      const authorityAfter = (id: string) =>
        after.query(
          `INSERT INTO authorities (id, name, type, parent_id, status, key_backend, key_spec, key_ref, public_key_sha256, subject, serial, fingerprint, not_before, not_after, certificate_der, created_at)
           VALUES ('${id}', '${id}', 'root', NULL, 'active', 'local', 'EC_P256', 'k-${id}', 'pk-${id}', 'CN=${id}', '01', 'fp-${id}', '2026-01-01T00:00:00Z', '2036-01-01T00:00:00Z', 'AA==', '2026-01-01T00:00:00.000Z')`,
        );
      await authorityAfter('root-new');
      const rows: { id: string; allow_leaf_issuance: unknown }[] = await after.query('SELECT id, allow_leaf_issuance FROM authorities ORDER BY id');
      await after.destroy();
      assert.deepEqual(
        rows.map((row) => [row.id, Boolean(row.allow_leaf_issuance)]),
        [
          ['intermediate', true],
          ['root-claimed', true],
          ['root-idle', true],
          ['root-new', false],
          ['root-successor', true],
          ['root-that-issued', true],
        ],
      );
    } finally {
      await db.drop();
    }
  });
});
