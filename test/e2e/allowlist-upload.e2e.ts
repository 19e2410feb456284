import assert from 'node:assert/strict';
import * as http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { eventually } from '../support/eventually';
import { LatencyProbe, LatencySummary } from '../support/latency-probe';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, StationCredentials, stationToken } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/** Runs `work` while probing `url` every 10 ms; the probe stops whatever happens. */
async function probing<T>(url: string, work: () => Promise<T>): Promise<{ result: T; latency: LatencySummary }> {
  const probe = new LatencyProbe(url, 10);
  await probe.ready();
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await probe.stop();
    throw err;
  }
  return { result, latency: await probe.stop() };
}

/**
 * /healthz p99 while an allow-list of a million serials is written. The goal is 100 ms, met with room to spare on a
 * quiet 2-core machine (14-40 ms, printed by this test); the assertion allows 500 ms so that a loaded CI machine does
 * not fail it, and still fails the design it guards against: one long transaction stalled every request for 1.9-3.2 s.
 */
const HEALTHZ_P99_BUDGET_MS = 500;
/**
 * The same during 20 concurrent uploads (see the test). Looser: the 20 clients share the service's thread here, and a
 * loaded CI machine measured p99 557 ms. The stalling design answered at p99 5-6 s there, so 1.5 s still fails it.
 */
const CONCURRENT_HEALTHZ_P99_BUDGET_MS = 1_500;

function serials(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(7, '0')}`);
}

/**
 * A JSON array of `count` serials `<prefix><7 digits>`, written straight into one buffer: building it leaves almost
 * no garbage behind, whose collection during a measurement would be charged to the service.
 */
function jsonSerials(prefix: string, count: number): string {
  const width = prefix.length + 7 + 3; // "…",
  const body = Buffer.alloc(2 + count * width - (count > 0 ? 1 : 0));
  body.write('[', 0, 'latin1');
  for (let i = 0; i < count; i++) body.write(`"${prefix}${String(i).padStart(7, '0')}"${i < count - 1 ? ',' : ''}`, 1 + i * width, 'latin1');
  body.write(']', body.length - 1, 'latin1');
  return body.toString('latin1');
}

/**
 * Large allow-list uploads must not stall the service: the list is written in short chunks with the event loop
 * free in between, then swapped in at once, so liveness and every other request keep being answered.
 */
for (const { driver, skip } of drivers())
describe(`allow-list uploads on ${driver}`, { skip }, () => {
  let t: TestApp;
  let cas: { claimAuthorityId: string; deviceAuthorityId: string };
  const ssl = new OpenSslWorkspace();

  before(async () => {
    t = await startTestApp(driver);
    const root = await admin('post', '/v1/authorities', { name: 'Upload Root', type: 'root', subject: { commonName: 'Upload Root' } });
    const claimCa = await admin('post', '/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Upload Claims CA' } });
    const deviceCa = await admin('post', '/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Upload Devices CA' } });
    cas = { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id };
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function admin(method: 'post' | 'get' | 'put', path: string, body?: unknown): Promise<Body> {
    const req = t.http()[method](path).set(bearer(t.adminKey));
    const res = await (body === undefined ? req : req.send(body as object));
    assert.ok([200, 201].includes(res.status), `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  function upload(claimId: string, body: string, type = 'application/json') {
    return t.http().put(`/v1/claims/${claimId}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', type).send(body);
  }

  function exchange(station: StationCredentials, deviceSerial: string, csrPem: string) {
    return t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial, csr: csrPem });
  }

  function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    return t.app.get(TypeOrmTransactions).sql<T>(text, params);
  }

  /** The claim's allow-list versions by status, and how many serials each holds. */
  async function versions(claimId: string): Promise<{ status: string; serials: number }[]> {
    const rows = await sql<{ status: string; serials: number | string }>(
      'SELECT l.status AS "status", (SELECT COUNT(*) FROM claim_allowlist_serials s WHERE s.allowlist_id = l.id) AS "serials" FROM claim_allowlists l WHERE l.claim_id = ? ORDER BY l.status',
      [claimId],
    );
    return rows.map((row) => ({ status: row.status, serials: Number(row.serials) }));
  }

  /** Serials written so far into the claim's staging list (a cheap read: no counting), or null when none is staging. */
  async function staging(claimId: string): Promise<number | null> {
    const [row] = await sql<{ size: number | string }>("SELECT size AS \"size\" FROM claim_allowlists WHERE claim_id = ? AND status = 'staging'", [claimId]);
    return row ? Number(row.size) : null;
  }

  it(`keeps /healthz answering (p99 within ${HEALTHZ_P99_BUDGET_MS} ms; goal 100 ms) while 1,000,000 serials are uploaded, then replaced by 1,000,000 others; exchanges go on under the list in force`, { timeout: 240_000 }, async () => {
    const { claim, station } = await createClaim(t, cas);
    // Made before probing: building bodies this size (or CSRs with openssl) in the service's own thread would stall the probes.
    const bodies = [jsonSerials('M', 1_000_000), jsonSerials('N', 1_000_000)];
    const csrs = { old: ssl.newCsr('ec:P-256', '/CN=M0000001').csrPem, new: ssl.newCsr('ec:P-256', '/CN=N0000001').csrPem };
    const started = Date.now();
    const { result, latency } = await probing(`${t.baseUrl}/healthz`, async () => {
      const first = await upload(claim.id, bodies[0]);
      const second = upload(claim.id, bodies[1]).then((res) => res);
      // While the new list is being written, the exchange still answers under the old one.
      await eventually('the new list is being written', async () => ((await staging(claim.id)) ?? 0) > 0, 60_000, 5);
      const duringOld = await exchange(station, 'M0000001', csrs.old);
      const duringNew = await exchange(station, 'N0000001', csrs.new);
      const stillStaging = (await staging(claim.id)) !== null;
      return { first, second: await second, duringOld, duringNew, stillStaging };
    });
    const elapsed = Date.now() - started;
    console.log(`[${driver}] two 1M-serial uploads (the second replacing the first): ${elapsed} ms; /healthz probed every 10 ms: ${JSON.stringify(latency)}`);
    assert.equal(result.first.status, 200, result.first.text);
    assert.equal(result.first.body.allowlistSize, 1_000_000);
    assert.equal(result.second.status, 200, result.second.text);
    assert.equal(result.second.body.allowlistSize, 1_000_000);
    assert.ok(result.stillStaging, 'the exchanges were answered before the new list was swapped in');
    assert.equal(result.duringOld.status, 201, result.duringOld.text);
    assert.equal(result.duringNew.status, 403, result.duringNew.text);
    assert.equal(result.duringNew.body.code, 'SERIAL_NOT_ALLOWED');
    // After the swap: the new list only, and nothing left of the old one.
    assert.equal((await exchange(station, 'N0000001', csrs.new)).status, 201);
    assert.equal((await exchange(station, 'M0000002', ssl.newCsr('ec:P-256', '/CN=M0000002').csrPem)).body.code, 'SERIAL_NOT_ALLOWED');
    assert.deepEqual(await versions(claim.id), [{ status: 'active', serials: 1_000_000 }]);
    assert.equal(latency.failures, 0);
    assert.ok(latency.count >= 100, `only ${latency.count} probes`);
    assert.ok(latency.p99 <= HEALTHZ_P99_BUDGET_MS, `/healthz p99 ${latency.p99.toFixed(1)} ms > ${HEALTHZ_P99_BUDGET_MS} ms during the uploads`);
  });

  it('a list refused late (after chunks were written) leaves the list in force intact and nothing of itself behind', async () => {
    const { claim, station } = await createClaim(t, cas);
    assert.equal((await upload(claim.id, JSON.stringify(['KEEP1', 'KEEP2']))).status, 200);
    for (const [type, body] of [
      ['text/csv', `serial\n${serials('L', 25_000).join('\n')}\nbad serial!\n`],
      ['application/json', `${jsonSerials('J', 25_000).slice(0, -1)}, 7]`],
    ]) {
      const res = await upload(claim.id, body, type);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.code, 'INVALID_ALLOWLIST');
    }
    assert.equal((await admin('get', `/v1/claims/${claim.id}`)).allowlistSize, 2);
    assert.deepEqual(await versions(claim.id), [{ status: 'active', serials: 2 }]);
    assert.equal((await exchange(station, 'KEEP1', ssl.newCsr('ec:P-256', '/CN=KEEP1').csrPem)).status, 201);
    assert.equal((await exchange(station, 'L0000001', ssl.newCsr('ec:P-256', '/CN=L0000001').csrPem)).body.code, 'SERIAL_NOT_ALLOWED');
  });

  it('an upload cut off by the client (connection lost mid-body) changes nothing, even when what arrived is a valid CSV', async () => {
    const { claim } = await createClaim(t, cas);
    assert.equal((await upload(claim.id, JSON.stringify(['KEEP1']))).status, 200);
    const part = Buffer.from(`serial\n${serials('C', 20_000).join('\n')}\n`);
    await new Promise<void>((resolve) => {
      const url = new URL(`${t.baseUrl}/v1/claims/${claim.id}/allowlist`);
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { ...bearer(t.adminKey), 'Content-Type': 'text/csv', 'Content-Length': String(part.length + 100_000) } });
      req.on('error', () => resolve());
      req.write(part, () => setTimeout(() => req.destroy(), 200));
    });
    await eventually('the cut-off upload is discarded', async () => (await staging(claim.id)) === null && (await versions(claim.id)).length === 1, 10_000);
    assert.deepEqual(await versions(claim.id), [{ status: 'active', serials: 1 }]);
    assert.equal((await admin('get', `/v1/claims/${claim.id}`)).allowlistSize, 1);
  });

  it('refuses an upload for an unknown claim before reading its body', async () => {
    const res = await upload('00000000-0000-4000-8000-000000000000', JSON.stringify(['A1']));
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'CLAIM_NOT_FOUND');
  });

  it('deletes a staging list abandoned by a crashed upload, and leaves one still being written alone', async () => {
    const { claim } = await createClaim(t, cas);
    const hourAgo = new Date(Date.now() - 2 * 3600_000).toISOString();
    const now = new Date().toISOString();
    const staged: number[] = [];
    for (const at of [hourAgo, now]) {
      const [{ id }] = await sql<{ id: number }>("INSERT INTO claim_allowlists (claim_id, status, size, created_at, updated_at) VALUES (?, 'staging', 3, ?, ?) RETURNING id", [claim.id, at, at]);
      await sql("INSERT INTO claim_allowlist_serials (allowlist_id, device_serial) VALUES (?, 'X1'), (?, 'X2'), (?, 'X3')", [id, id, id]);
      staged.push(Number(id));
    }
    assert.equal((await upload(claim.id, JSON.stringify(['A1']))).status, 200);
    const [abandoned, live] = staged;
    const left = await sql<{ id: number; status: string }>('SELECT id, status FROM claim_allowlists WHERE claim_id = ? ORDER BY status', [claim.id]);
    assert.deepEqual(left.map((row) => row.status), ['active', 'staging']);
    assert.equal(Number(left[1].id), live);
    assert.equal((await sql('SELECT device_serial FROM claim_allowlist_serials WHERE allowlist_id = ?', [abandoned])).length, 0);
    assert.equal((await sql('SELECT device_serial FROM claim_allowlist_serials WHERE allowlist_id = ?', [live])).length, 3);
    await sql('DELETE FROM claim_allowlist_serials WHERE allowlist_id = ?', [live]);
    await sql('DELETE FROM claim_allowlists WHERE id = ?', [live]);
  });

  it('takes 20 concurrent uploads without stalling: 2 written at a time, 8 waiting, the rest refused with 503 and Retry-After; one list wins whole', { timeout: 240_000 }, async () => {
    const { claim } = await createClaim(t, cas);
    const count = 100_000;
    const prefixes = Array.from({ length: 20 }, (_, i) => String.fromCharCode(65 + i)); // A…T
    const bodies = prefixes.map((prefix) => jsonSerials(prefix, count));
    const started = Date.now();
    const { result: answers, latency } = await probing(`${t.baseUrl}/healthz`, () => Promise.all(bodies.map((body) => upload(claim.id, body))));
    const elapsed = Date.now() - started;
    const statuses = answers.map((res) => res.status);
    console.log(`[${driver}] 20 concurrent 100k-serial uploads: ${elapsed} ms; statuses ${JSON.stringify(statuses)}; /healthz probed every 10 ms: ${JSON.stringify(latency)}`);
    const accepted = answers.filter((res) => res.status === 200);
    const refused = answers.filter((res) => res.status !== 200);
    assert.equal(accepted.length, 10, JSON.stringify(statuses));
    for (const res of accepted) assert.equal(res.body.allowlistSize, count);
    for (const res of refused) {
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.code, 'ALLOWLIST_UPLOADS_BUSY');
      assert.equal(res.headers['retry-after'], '10');
    }
    // One of the accepted lists is in force, whole and unmixed; every other version is gone.
    assert.deepEqual(await versions(claim.id), [{ status: 'active', serials: count }]);
    const inForce = await sql<{ prefix: string; n: number | string }>(
      'SELECT substr(s.device_serial, 1, 1) AS "prefix", COUNT(*) AS "n" FROM claims c JOIN claim_allowlist_serials s ON s.allowlist_id = c.allowlist_id WHERE c.id = ? GROUP BY substr(s.device_serial, 1, 1)',
      [claim.id],
    );
    assert.equal(inForce.length, 1);
    assert.equal(Number(inForce[0].n), count);
    // Looser than the single-upload budget: the 20 clients run in the service's own thread here, and supertest encodes
    // their 20 bodies there at once. The old code answered nothing for seconds (p99 over 5 s).
    assert.ok(latency.p99 <= CONCURRENT_HEALTHZ_P99_BUDGET_MS, `/healthz p99 ${latency.p99.toFixed(1)} ms > ${CONCURRENT_HEALTHZ_P99_BUDGET_MS} ms during the uploads`);
  });
});
