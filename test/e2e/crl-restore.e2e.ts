import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { temporaryDatabase, TemporaryDatabase } from '../../scripts/lib/temporary-database';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, binaryBody, drivers, Driver, startTestApp, TestApp } from '../support/test-app';

/** The CRL as openssl reads it: its number and the serials it lists (lowercase hex). */
async function fetchCrl(t: TestApp, ssl: OpenSslWorkspace, authorityId: string): Promise<{ number: number; serials: string[] }> {
  const res = await t.http().get(`/v1/authorities/${authorityId}/crl`).buffer(true).parse(binaryBody);
  assert.equal(res.status, 200, String(res.body));
  const file = ssl.file(`crl-${randomBytes(4).toString('hex')}.der`, res.body as Buffer);
  const number = parseInt(/crlNumber=(\S+)/.exec(ssl.run(['crl', '-inform', 'DER', '-in', file, '-noout', '-crlnumber']).output)![1], 16);
  const text = ssl.run(['crl', '-inform', 'DER', '-in', file, '-noout', '-text']).output;
  const serials = [...text.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => m[1].toLowerCase().replace(/^0+/, ''));
  return { number, serials };
}

function strip(serial: string): string {
  return serial.toLowerCase().replace(/^0+/, '');
}

/** A real backup of the running database: SQLite VACUUM INTO, PostgreSQL pg_dump (custom format). */
async function backup(driver: Driver, t: TestApp, file: string): Promise<void> {
  if (driver === 'sqlite') await t.app.get(DataSource).query(`VACUUM INTO '${file}'`);
  else execFileSync('pg_dump', ['--format=custom', `--file=${file}`, (t.db.config as { url: string }).url]);
}

/** Restores the backup over the stopped service's database: file copy for SQLite, pg_restore --clean for PostgreSQL. */
function restore(driver: Driver, db: TemporaryDatabase, file: string): void {
  if (driver === 'sqlite') {
    const target = (db.config as { file: string }).file;
    for (const suffix of ['-wal', '-shm']) fs.rmSync(target + suffix, { force: true });
    fs.copyFileSync(file, target);
  } else {
    execFileSync('pg_restore', ['--clean', '--if-exists', '--no-owner', `--dbname=${(db.config as { url: string }).url}`, file]);
  }
}

/**
 * Restoring an older backup must not silently un-revoke (docs/operations.md "Restoring an older database"): the CRL
 * service remembers, outside the database, the highest CRL it published; with fewer revocations in the database it
 * refuses to publish (503 CRL_ROLLBACK_DETECTED) until the lost revocations are made again, and CRL numbers continue
 * above the highest one published, never reusing one.
 */
for (const { driver, skip } of drivers()) {
  describe(`CRL after restoring an older ${driver} backup`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-restore-'));
    const dataDir = path.join(work, 'data');
    const backupFile = path.join(work, driver === 'sqlite' ? 'backup.sqlite' : 'backup.dump');
    const env = { FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex') };
    let db: TemporaryDatabase;
    let t: TestApp;
    let authorityId: string;
    let first: { id: string; serial: string };
    let second: { id: string; serial: string };
    let beforeRestore: { number: number; serials: string[] };

    before(async () => {
      fs.mkdirSync(dataDir, { mode: 0o700 });
      db = await temporaryDatabase(driver);
      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env });
      const { intermediate } = await createCaPair(t);
      authorityId = intermediate.id;
      first = await issueDevice(t, ssl, authorityId, 'restore-thing-1');
      second = await issueDevice(t, ssl, authorityId, 'restore-thing-2');
      assert.equal((await t.http().post(`/v1/certificates/${first.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      const published = await fetchCrl(t, ssl, authorityId);
      assert.deepEqual(published.serials, [strip(first.serial)]);
      await backup(driver, t, backupFile);
      assert.equal((await t.http().post(`/v1/certificates/${second.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      beforeRestore = await fetchCrl(t, ssl, authorityId);
      assert.ok(beforeRestore.number > published.number);
      assert.deepEqual(beforeRestore.serials.sort(), [strip(first.serial), strip(second.serial)].sort());
      await t.close();
      restore(driver, db, backupFile);
      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env });
    });
    after(async () => {
      await t?.close();
      await db?.drop();
      ssl.cleanup();
      fs.rmSync(work, { recursive: true, force: true });
    });

    it('refuses to publish a CRL that would un-revoke what the restored database lost (503 CRL_ROLLBACK_DETECTED)', async () => {
      const lost = await t.http().get(`/v1/certificates/${second.id}`).set(bearer(t.adminKey));
      assert.equal(lost.body.status, 'active', 'the restored database has lost the second revocation');
      const res = await t.http().get(`/v1/authorities/${authorityId}/crl`);
      assert.equal(res.status, 503);
      assert.equal(res.body.code, 'CRL_ROLLBACK_DETECTED');
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    });

    it('publishes again once the lost revocation is made again, with a CRL number above every one published', async () => {
      assert.equal((await t.http().post(`/v1/certificates/${second.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' })).status, 200);
      const after = await fetchCrl(t, ssl, authorityId);
      assert.ok(after.number > beforeRestore.number, `CRL number ${after.number} must exceed ${beforeRestore.number}`);
      assert.deepEqual(after.serials.sort(), beforeRestore.serials.sort());
    });

    it('with CRL_ALLOW_ROLLBACK=true publishes the shorter list under a higher number, then checks against it', async () => {
      await t.close();
      restore(driver, db, backupFile);
      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env });
      assert.equal((await t.http().get(`/v1/authorities/${authorityId}/crl`)).status, 503);
      await t.close();
      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env: { ...env, CRL_ALLOW_ROLLBACK: 'true' } });
      const overridden = await fetchCrl(t, ssl, authorityId);
      assert.ok(overridden.number > beforeRestore.number, 'the number still never goes backwards');
      assert.deepEqual(overridden.serials, [strip(first.serial)]);
      await t.close();
      t = await startTestApp(driver, { sharedDatabase: db, dataDir, env });
      const next = await fetchCrl(t, ssl, authorityId);
      assert.ok(next.number >= overridden.number, 'the accepted state is the new watermark');
    });
  });
}
