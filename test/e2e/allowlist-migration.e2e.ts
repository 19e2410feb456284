import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { POSTGRES_MIGRATIONS } from '../../migrations/postgres';
import { SQLITE_MIGRATIONS } from '../../migrations/sqlite';
import { temporaryDatabase } from '../../scripts/lib/temporary-database';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { drivers } from '../support/test-app';

const MIGRATION = 'VersionedAllowlists';

/** The versioned allow-list migration keeps the lists already uploaded, both ways. */
for (const { driver, skip } of drivers())
describe(`allow-list migration on ${driver}`, { skip }, () => {
  it('turns each existing allow-list into its claim’s active version, and back on revert', async () => {
    const all = driver === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
    const index = all.findIndex((migration) => migration.name.startsWith(MIGRATION));
    assert.ok(index > 0);
    const db = await temporaryDatabase(driver);
    const before = new DataSource({ ...dataSourceOptions(db.config), migrations: all.slice(0, index), logging: false });
    await before.initialize();
    const q = (source: DataSource, text: string, params: unknown[] = []) =>
      source.query(driver === 'postgres' ? text.replace(/\?/g, ((n) => () => `$${++n}`)(0)) : text, params);
    try {
      await before.runMigrations();
      const claim = (id: string, size: number | null) =>
        q(before, 'INSERT INTO claims (id, name, factory, status, claim_authority_id, device_authority_id, profile, max_devices, not_before, not_after, thing_name_template, allowlist_size, claim_certificate_id, created_at) ' +
          "VALUES (?, 'c', 'f', 'active', 'a', 'd', 'device', 10, '2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z', 'x-{serial}', ?, ?, '2026-01-01T00:00:00Z')", [id, size, id.replace(/^./, 'c')]);
      await claim('11111111-1111-4111-8111-111111111111', 2);
      await claim('22222222-2222-4222-8222-222222222222', null);
      await q(before, "INSERT INTO claim_allowlist (claim_id, device_serial) VALUES ('11111111-1111-4111-8111-111111111111', 'S1'), ('11111111-1111-4111-8111-111111111111', 'S2')");
    } finally {
      await before.destroy();
    }

    const after = new DataSource({ ...dataSourceOptions(db.config), logging: false });
    await after.initialize();
    try {
      await after.runMigrations();
      const lists = await q(after, 'SELECT id, claim_id AS "claimId", status, size FROM claim_allowlists');
      assert.deepEqual(lists.map((l: { claimId: string; status: string; size: number }) => [l.claimId, l.status, Number(l.size)]), [['11111111-1111-4111-8111-111111111111', 'active', 2]]);
      const listId = Number(lists[0].id);
      const claims = await q(after, 'SELECT id, allowlist_id AS "allowlistId", allowlist_size AS "size" FROM claims ORDER BY id');
      assert.deepEqual(claims.map((c: { allowlistId: number | null; size: number | null }) => [c.allowlistId, c.size]), [
        [listId, 2],
        [null, null],
      ]);
      const serials = await q(after, 'SELECT device_serial AS "serial" FROM claim_allowlist_serials WHERE allowlist_id = ? ORDER BY device_serial', [listId]);
      assert.deepEqual(serials.map((s: { serial: string }) => s.serial), ['S1', 'S2']);

      // Back down to just before the allow-list migration (later migrations are reverted first).
      for (let i = index; i < all.length; i++) await after.undoLastMigration();
      const restored = await q(after, 'SELECT claim_id AS "claimId", device_serial AS "serial" FROM claim_allowlist ORDER BY device_serial');
      assert.deepEqual(restored.map((r: { claimId: string; serial: string }) => [r.claimId, r.serial]), [
        ['11111111-1111-4111-8111-111111111111', 'S1'],
        ['11111111-1111-4111-8111-111111111111', 'S2'],
      ]);
    } finally {
      await after.destroy();
      await db.drop();
    }
  });
});
