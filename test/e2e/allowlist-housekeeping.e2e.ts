import assert from 'node:assert/strict';
import * as http from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LoggerService } from '@nestjs/common';
import type { Response } from 'supertest';
import { ClaimRepository } from '../../src/claims/claim.repository';
import { Transactions } from '../../src/database/transactions';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { eventually } from '../support/eventually';
import { createClaim } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/** Every line the application logs, by level. */
class CapturedLog implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log(message: unknown) { this.lines.push({ level: 'log', message: String(message) }); }
  error(message: unknown) { this.lines.push({ level: 'error', message: String(message) }); }
  warn(message: unknown) { this.lines.push({ level: 'warn', message: String(message) }); }
  debug(message: unknown) { this.lines.push({ level: 'debug', message: String(message) }); }
  verbose(message: unknown) { this.lines.push({ level: 'verbose', message: String(message) }); }
  fatal(message: unknown) { this.lines.push({ level: 'fatal', message: String(message) }); }
  at(level: string) {
    return this.lines.filter((line) => line.level === level);
  }
}

/**
 * The housekeeping around allow-list uploads: retired lists are purged without orphaning serials, even by two
 * purgers at once; the clean-up before an upload is bounded and cannot fail it; expected failures of an upload
 * (superseded, client gone) are problems with a code, not 500s with an ERROR log.
 */
for (const { driver, skip } of drivers())
describe(`allow-list housekeeping on ${driver}`, { skip }, () => {
  let t: TestApp;
  let cas: { claimAuthorityId: string; deviceAuthorityId: string };
  const log = new CapturedLog();

  before(async () => {
    t = await startTestApp(driver);
    t.app.useLogger(log);
    const root = await admin('/v1/authorities', { name: 'Housekeeping Root', type: 'root', subject: { commonName: 'Housekeeping Root' } });
    const claimCa = await admin('/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Housekeeping Claims CA' } });
    const deviceCa = await admin('/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Housekeeping Devices CA' } });
    cas = { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id };
  });
  beforeEach(() => {
    log.lines.length = 0;
  });
  after(async () => {
    await t?.close();
  });

  async function admin(path: string, body: unknown): Promise<Body> {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body as object);
    assert.ok([200, 201].includes(res.status), `${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  function upload(claimId: string, body: string) {
    return t.http().put(`/v1/claims/${claimId}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', 'application/json').send(body);
  }

  function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    return t.app.get(TypeOrmTransactions).sql<T>(text, params);
  }

  /** A retired list of `count` serials for the claim, written straight into the tables. */
  async function retiredList(claimId: string, count: number): Promise<number> {
    const at = new Date().toISOString();
    const [{ id }] = await sql<{ id: number }>("INSERT INTO claim_allowlists (claim_id, status, size, created_at, updated_at) VALUES (?, 'retired', ?, ?, ?) RETURNING id", [claimId, count, at, at]);
    for (let i = 0; i < count; i += 500) {
      const rows = Array.from({ length: Math.min(500, count - i) }, (_, j) => `R${String(i + j).padStart(7, '0')}`);
      await sql(`INSERT INTO claim_allowlist_serials (allowlist_id, device_serial) VALUES ${rows.map(() => '(?, ?)').join(', ')}`, rows.flatMap((serial) => [id, serial]));
    }
    return Number(id);
  }

  async function serialsOf(allowlistId: number): Promise<number> {
    const [row] = await sql<{ n: number | string }>('SELECT COUNT(*) AS "n" FROM claim_allowlist_serials WHERE allowlist_id = ?', [allowlistId]);
    return Number(row.n);
  }

  async function listExists(allowlistId: number): Promise<boolean> {
    return (await sql('SELECT id FROM claim_allowlists WHERE id = ?', [allowlistId])).length === 1;
  }

  /** Starts a raw PUT of the allow-list with `first` as the start of its body; the caller writes the rest or cuts it off. */
  function rawUpload(claimId: string, first: string, declaredLength: number): { req: http.ClientRequest; answer: Promise<{ status: number; body: Body } | null> } {
    const url = new URL(`${t.baseUrl}/v1/claims/${claimId}/allowlist`);
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { ...bearer(t.adminKey), 'Content-Type': 'text/csv', 'Content-Length': String(declaredLength) } });
    const answer = new Promise<{ status: number; body: Body } | null>((resolve) => {
      req.on('error', () => resolve(null));
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
    });
    req.write(first);
    return { req, answer };
  }

  async function stagingOf(claimId: string): Promise<number | null> {
    const [row] = await sql<{ id: number }>("SELECT id FROM claim_allowlists WHERE claim_id = ? AND status = 'staging'", [claimId]);
    return row ? Number(row.id) : null;
  }

  it('two purgers of one retired list at once leave no serial orphaned, and the list goes', async () => {
    const repository = t.app.get(ClaimRepository);
    const transactions = t.app.get(Transactions);
    const { claim } = await createClaim(t, cas);
    for (let round = 0; round < 5; round++) {
      const id = await retiredList(claim.id, 3000);
      const purge = async () => {
        while ((await transactions.run(() => repository.purgeAllowlist(id, 100))) > 0);
      };
      await Promise.all([purge(), purge()]);
      assert.equal(await serialsOf(id), 0, `round ${round}: orphaned serials`);
      assert.equal(await listExists(id), false, `round ${round}: the list row is left`);
    }
  });

  it('an upload deletes at most one retired list before it reads its body, the rest after its swap', async () => {
    const { claim: other } = await createClaim(t, cas);
    const lists = [await retiredList(other.id, 10), await retiredList(other.id, 10), await retiredList(other.id, 10)];
    const repository = t.app.get(ClaimRepository);
    const open = repository.openAllowlist.bind(repository);
    let leftWhenOpened: number | undefined;
    repository.openAllowlist = async (claimId, at) => {
      leftWhenOpened = (await Promise.all(lists.map(listExists))).filter(Boolean).length;
      return open(claimId, at);
    };
    try {
      const { claim } = await createClaim(t, cas);
      const res = await upload(claim.id, JSON.stringify(['H1']));
      assert.equal(res.status, 200, res.text);
    } finally {
      repository.openAllowlist = open;
    }
    assert.equal(leftWhenOpened, 2, 'one list purged before the upload');
    assert.deepEqual(await Promise.all(lists.map(listExists)), [false, false, false]);
  });

  it('a failure of the clean-up before an upload is logged, and the upload succeeds', async () => {
    const repository = t.app.get(ClaimRepository);
    const reclaimable = repository.reclaimableAllowlists.bind(repository);
    let calls = 0;
    repository.reclaimableAllowlists = async (...args) => {
      if (calls++ === 0) throw new Error('housekeeping database hiccup');
      return reclaimable(...args);
    };
    try {
      const { claim } = await createClaim(t, cas);
      const res = await upload(claim.id, JSON.stringify(['H2', 'H3']));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.allowlistSize, 2);
    } finally {
      repository.reclaimableAllowlists = reclaimable;
    }
    assert.ok(log.at('warn').some((line) => line.message.includes('housekeeping database hiccup')), JSON.stringify(log.lines));
    assert.deepEqual(log.at('error'), []);
  });

  it('an upload whose staging list is reclaimed under it answers 409 ALLOWLIST_UPLOAD_SUPERSEDED, whether at a chunk or at activation, no ERROR line', async () => {
    const { claim } = await createClaim(t, cas);
    assert.equal((await upload(claim.id, JSON.stringify(['KEEP1']))).status, 200);
    const lines = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}\n`).join('');
    const cases = [
      // Retired before any chunk is written: the next chunk finds it gone.
      { first: 'serial\n', later: lines('S', 1500), written: 0 },
      // Retired once its one chunk (1,000 serials) is written: the last line is blank, so activation finds it gone.
      { first: `serial\n${lines('T', 1000)}`, later: '\n', written: 1000 },
    ];
    for (const { first, later, written } of cases) {
      const { req, answer } = rawUpload(claim.id, first, Buffer.byteLength(first) + Buffer.byteLength(later));
      let staging: number | null = null;
      await eventually('the upload wrote its first chunks', async () => {
        const [row] = await sql<{ id: number; size: number | string }>("SELECT id, size AS \"size\" FROM claim_allowlists WHERE claim_id = ? AND status = 'staging'", [claim.id]);
        staging = row && Number(row.size) === written ? Number(row.id) : null;
        return staging !== null;
      }, 10_000);
      await sql("UPDATE claim_allowlists SET status = 'retired' WHERE id = ?", [staging]);
      req.end(later);
      const res = await answer;
      assert.ok(res);
      assert.equal(res.status, 409, JSON.stringify(res.body));
      assert.equal(res.body.code, 'ALLOWLIST_UPLOAD_SUPERSEDED');
    }
    assert.equal((await t.http().get(`/v1/claims/${claim.id}`).set(bearer(t.adminKey))).body.allowlistSize, 1);
    assert.deepEqual(log.at('error'), []);
  });

  it('an upload the client cuts off mid-body logs no ERROR line and changes nothing', async () => {
    const { claim } = await createClaim(t, cas);
    assert.equal((await upload(claim.id, JSON.stringify(['KEEP1']))).status, 200);
    const part = `serial\n${Array.from({ length: 5000 }, (_, i) => `C${i}`).join('\n')}\n`;
    const { req, answer } = rawUpload(claim.id, part, Buffer.byteLength(part) + 100_000);
    await eventually('the upload is being written', async () => (await stagingOf(claim.id)) !== null, 10_000);
    req.destroy();
    await answer;
    await eventually('the cut-off upload is discarded', async () => (await stagingOf(claim.id)) === null, 10_000);
    // The answer to a request nobody reads is still settled (and logged, if at all) after the discard: give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(log.at('error'), []);
    assert.deepEqual(log.at('fatal'), []);
    assert.equal((await t.http().get(`/v1/claims/${claim.id}`).set(bearer(t.adminKey))).body.allowlistSize, 1);
  });
});
