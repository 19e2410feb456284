import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { IdempotencyRecords } from '../../src/database/idempotency-records';
import { Pruner } from '../../src/database/pruner';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { UsedTokenIds } from '../../src/certificates/used-token-ids.repository';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { eventually } from '../support/eventually';
import { bearer, drivers, ManualClock, startTestApp, TestApp } from '../support/test-app';

const HOUR = 3_600_000;
const BACKLOG = 2_500;

/**
 * Pruning (docs/operations.md, "Pruning"): idempotency records past IDEMPOTENCY_RETENTION_HOURS and used token ids
 * past their tokens' expiry are deleted by a periodic job, PRUNE_BATCH_SIZE rows per statement; a request retried
 * inside the retention still gets its original answer.
 */
for (const { driver, skip } of drivers())
describe(`pruning on ${driver}`, { skip }, () => {
  const clock = new ManualClock();
  let t: TestApp;
  let deviceCa: { id: string };

  before(async () => {
    t = await startTestApp(driver, { clock, env: { IDEMPOTENCY_RETENTION_HOURS: '24', PRUNE_INTERVAL_SECONDS: '1', PRUNE_BATCH_SIZE: '1000', PRUNE_PAUSE_MS: '5' } });
    const root = await post('/v1/authorities', { name: 'Prune Root', type: 'root', subject: { commonName: 'Prune Root' } });
    deviceCa = (await post('/v1/authorities', { name: 'Prune Devices', type: 'intermediate', parentId: root.body.id, subject: { commonName: 'Prune Devices CA' } })).body;
  });
  after(async () => {
    await t?.close();
  });

  function post(path: string, body: object, key?: string) {
    const req = t.http().post(path).set(bearer(t.adminKey));
    if (key) void req.set('Idempotency-Key', key);
    return req.send(body);
  }

  const db = () => t.app.get(TypeOrmTransactions);
  async function count(table: string, where = '1 = 1', params: unknown[] = []): Promise<number> {
    const [row] = await db().sql<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params);
    return Number(row.n);
  }

  /** A backlog of expired rows in both tables, inserted directly (500 a statement). */
  async function expiredBacklog(prefix: string): Promise<void> {
    const expired = new Date(clock.now().getTime() - HOUR).toISOString();
    const created = new Date(clock.now().getTime() - 25 * HOUR).toISOString();
    for (let i = 0; i < BACKLOG; i += 500) {
      const n = Math.min(500, BACKLOG - i);
      const keys = Array.from({ length: n }, (_, j) => `${prefix}-${i + j}`);
      await db().runGrouped(() =>
        db().sql(
          `INSERT INTO idempotency_records (scope, idempotency_key, request_sha256, state, locked_until, status_code, created_at, expires_at) VALUES ${keys.map(() => "(?, ?, ?, 'completed', ?, 201, ?, ?)").join(', ')}`,
          keys.flatMap((k) => ['POST /v1/certificates apikey:old', k, 'a'.repeat(64), created, created, expired]),
        ),
      );
      await db().runGrouped(() => db().sql(`INSERT INTO used_token_ids (id, expires_at) VALUES ${keys.map(() => '(?, ?)').join(', ')}`, keys.flatMap((k) => [k, expired])));
    }
  }

  it('deletes at most a batch per statement', async () => {
    await expiredBacklog('batch');
    const now = clock.now().toISOString();
    assert.equal(await t.app.get(IdempotencyRecords).prune(now, 1000), 1000);
    assert.equal(await t.app.get(UsedTokenIds).prune(now, 1000), 1000);
    await t.app.get(Pruner).pruneOnce();
    assert.equal(await count('idempotency_records', 'idempotency_key LIKE ?', ['batch-%']), 0);
    assert.equal(await count('used_token_ids', 'id LIKE ?', ['batch-%']), 0);
  });

  it('prunes expired rows periodically, while a request retried inside the retention still gets its original answer', async () => {
    const body = { authorityId: deviceCa.id, csr: deviceKeyAndCsr('prune-retained').csrPem, profile: 'device', validityDays: 30 };
    const first = await post('/v1/certificates', body, 'prune-retained');
    assert.equal(first.status, 201, first.text);
    clock.advance(23 * HOUR); // still inside IDEMPOTENCY_RETENTION_HOURS
    await expiredBacklog('periodic');

    // The periodic job (PRUNE_INTERVAL_SECONDS=1) clears the backlog in batches of 1,000.
    await eventually('the expired idempotency records are gone', async () => (await count('idempotency_records', 'idempotency_key LIKE ?', ['periodic-%'])) === 0, 60_000, 100);
    await eventually('the expired token ids are gone', async () => (await count('used_token_ids', 'id LIKE ?', ['periodic-%'])) === 0, 60_000, 100);
    assert.equal(await count('idempotency_records', 'idempotency_key = ?', ['prune-retained']), 1, 'the record inside its retention is kept');

    const retried = await post('/v1/certificates', body, 'prune-retained');
    assert.equal(retried.status, 201);
    assert.deepEqual(retried.body, first.body, 'the original answer, replayed');

    clock.advance(2 * HOUR); // past the retention
    await t.app.get(Pruner).pruneOnce();
    assert.equal(await count('idempotency_records', 'idempotency_key = ?', ['prune-retained']), 0, 'pruned once past its retention');
    const after = await post('/v1/certificates', body, 'prune-retained');
    assert.equal(after.status, 201, after.text);
    assert.notEqual(after.body.id, first.body.id, 'the key starts a new request');
  });
});
