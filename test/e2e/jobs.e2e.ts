import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Transactions } from '../../src/database/transactions';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { OutboxService } from '../../src/jobs/outbox.service';
import { eventually } from '../support/eventually';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

const FAST = { OUTBOX_POLL_MS: '20', OUTBOX_BATCH_SIZE: '10', OUTBOX_BACKOFF_BASE_MS: '10', OUTBOX_BACKOFF_MAX_MS: '20', OUTBOX_MAX_ATTEMPTS: '2' };

type JobItem = { id: string; kind: string; status: string; attempts: number; lastError: string | null; subject: { type: string; id: string } | null; createdAt: string; updatedAt: string };

/**
 * Dead outbox jobs (docs/operations.md, "Dead jobs"): GET /v1/jobs?state=dead pages through them (never their
 * payload), POST /v1/jobs/{id}/retry runs one again once its fault is fixed, and fleetpki_outbox_dead_jobs counts them.
 */
for (const { driver, skip } of drivers())
describe(`dead jobs on ${driver}`, { skip }, () => {
  let t: TestApp;
  let operatorKey: string;
  let fixed = false;

  before(async () => {
    t = await startTestApp(driver, { env: FAST });
    operatorKey = (await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: 'jobs operator', role: 'operator' })).body.key;
    t.app.get(OutboxService).register('test.flaky', {
      run: async () => {
        if (!fixed) throw new Error('downstream is broken');
      },
    });
  });
  after(async () => {
    await t?.close();
  });

  const sql = (text: string, params: unknown[] = []) => t.app.get(TypeOrmTransactions).sql<Record<string, unknown>>(text, params);
  const enqueue = (n: number, dedupe?: string) =>
    t.app.get(Transactions).run(async () => {
      for (let i = 0; i < n; i++) await t.app.get(OutboxService).enqueue({ kind: 'test.flaky', payload: { secretish: 'never listed' }, dedupeKey: dedupe, target: { type: 'certificate', id: `subject-${i}` } });
    });

  async function listAll(limit: number): Promise<{ items: JobItem[]; pages: number }> {
    const items: JobItem[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await t.http().get('/v1/jobs').query({ state: 'dead', limit, ...(cursor ? { cursor } : {}) }).set(bearer(t.adminKey));
      assert.equal(res.status, 200, res.text);
      items.push(...res.body.items);
      cursor = res.body.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    return { items, pages };
  }

  it('lists dead jobs page by page (oldest first, no payload), and counts them in fleetpki_outbox_dead_jobs', async () => {
    await enqueue(5);
    await eventually('five dead jobs', async () => Number((await sql("SELECT COUNT(*) AS n FROM outbox_jobs WHERE status = 'dead'"))[0].n) === 5);
    const { items, pages } = await listAll(2);
    assert.equal(items.length, 5);
    assert.equal(pages, 3);
    assert.equal(new Set(items.map((j) => j.id)).size, 5, 'no job twice across pages');
    assert.deepEqual(items.map((j) => j.createdAt), items.map((j) => j.createdAt).sort());
    for (const job of items) {
      assert.deepEqual(Object.keys(job).sort(), ['attempts', 'createdAt', 'id', 'kind', 'lastError', 'status', 'subject', 'updatedAt']);
      assert.equal(job.status, 'dead');
      assert.equal(job.attempts, 2);
      assert.equal(job.lastError, 'downstream is broken');
      assert.equal(job.subject?.type, 'certificate');
    }
    assert.match((await t.http().get('/metrics')).text, /^fleetpki_outbox_dead_jobs\{kind="test.flaky"\} 5$/m);
  });

  it('refuses a list of anything but dead jobs (400) and a forged cursor (400)', async () => {
    assert.equal((await t.http().get('/v1/jobs').query({ state: 'pending' }).set(bearer(t.adminKey))).status, 400);
    assert.equal((await t.http().get('/v1/jobs').set(bearer(t.adminKey))).status, 400);
    const forged = await t.http().get('/v1/jobs').query({ state: 'dead', cursor: 'bm90LWEtY3Vyc29y' }).set(bearer(t.adminKey));
    assert.equal(forged.status, 400);
    assert.equal(forged.body.code, 'INVALID_CURSOR');
  });

  it('does not retry a dead job while a live job does the same work (same dedupe key): 409, still dead', async () => {
    await enqueue(1, 'test.flaky:same-work');
    await eventually('the keyed job is dead', async () => (await sql("SELECT status FROM outbox_jobs WHERE dedupe_key = 'test.flaky:same-work'"))[0]?.status === 'dead');
    const [dead] = await sql("SELECT id FROM outbox_jobs WHERE dedupe_key = 'test.flaky:same-work'");
    await t.app.get(Transactions).run(() => t.app.get(OutboxService).enqueue({ kind: 'test.flaky', payload: {}, dedupeKey: 'test.flaky:same-work', runAfter: new Date(Date.now() + 3_600_000) }));
    const res = await t.http().post(`/v1/jobs/${String(dead.id)}/retry`).set(bearer(operatorKey));
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.code, 'JOB_NOT_DEAD');
    assert.equal((await sql('SELECT status FROM outbox_jobs WHERE id = ?', [dead.id]))[0].status, 'dead');
    await sql("DELETE FROM outbox_jobs WHERE dedupe_key = 'test.flaky:same-work'");
  });

  it('runs every retried job to completion once the fault is fixed; the gauge drops to 0', async () => {
    fixed = true;
    const { items } = await listAll(100);
    for (const job of items) {
      const res = await t.http().post(`/v1/jobs/${job.id}/retry`).set(bearer(operatorKey));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'pending');
      assert.equal(res.body.attempts, 0);
    }
    await eventually('every job done', async () => Number((await sql("SELECT COUNT(*) AS n FROM outbox_jobs WHERE status = 'done' AND kind = 'test.flaky'"))[0].n) === items.length);
    assert.deepEqual((await listAll(100)).items, []);
    assert.doesNotMatch((await t.http().get('/metrics')).text, /^fleetpki_outbox_dead_jobs\{kind="test.flaky"\} [1-9]/m);
    const audited = (await t.http().get('/v1/audit').query({ action: 'outbox.job-retried' }).set(bearer(t.adminKey))).body.items as { actor: { role: string } }[];
    assert.equal(audited.length, items.length);
    assert.ok(audited.every((e) => e.actor.role === 'operator'));
  });
});
