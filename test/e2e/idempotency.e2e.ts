import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { IdempotencyInterceptor } from '../../src/database/idempotency.interceptor';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { deviceToken } from '../support/station';
import { bearer, drivers, ManualClock, startReplicas, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];
const HOUR = 3_600_000;

/**
 * Idempotency-Key on the state-changing POSTs (docs/idempotency.md): a retry with the same key and body gets the same
 * status and body and changes nothing (rows and audit events counted); another body is a 422; concurrent duplicates
 * have one effect, decided by the database; answers holding a secret are never stored; records expire and are pruned.
 */
for (const { driver, skip } of drivers())
describe(`Idempotency-Key on ${driver}`, { skip }, () => {
  const clock = new ManualClock();
  let t: TestApp;
  let root: Body;
  let deviceCa: Body;
  let claimCa: Body;

  before(async () => {
    t = await startTestApp(driver, { clock });
    root = await admin('/v1/authorities', { name: 'Idem Root', type: 'root', subject: { commonName: 'Idem Root' } });
    deviceCa = await admin('/v1/authorities', { name: 'Idem Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Idem Devices CA' } });
    claimCa = await admin('/v1/authorities', { name: 'Idem Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Idem Claims CA' } });
  });
  after(async () => {
    await t?.close();
  });

  async function admin(path: string, body: object): Promise<Body> {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
    assert.ok([200, 201].includes(res.status), `${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  function post(path: string, body: object | string, key?: string, contentType?: string) {
    const req = t.http().post(path).set(bearer(t.adminKey));
    if (key !== undefined) void req.set('Idempotency-Key', key);
    if (contentType) void req.set('Content-Type', contentType);
    return req.send(body);
  }

  async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    return t.app.get(TypeOrmTransactions).sql<T>(text, params);
  }

  async function count(table: string, where = '1 = 1', params: unknown[] = []): Promise<number> {
    const [row] = await sql<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params);
    return Number(row.n);
  }

  const auditEvents = (action: string) => count('audit_events', 'action = ?', [action]);
  const issueBody = (cn: string) => ({ authorityId: deviceCa.id, csr: deviceKeyAndCsr(cn).csrPem, profile: 'device', validityDays: 30 });
  const claimBody = (name: string, claimCertificate: object) => ({
    name, factory: 'Idem factory', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 5, validityDays: 30,
    notAfter: new Date(clock.now().getTime() + 60 * 24 * HOUR).toISOString(), thingNameTemplate: 'idem-{serial}', claimCertificate,
  });

  it('POST /v1/certificates: the same key and body answer the same certificate, issued once; another body is a 422', async () => {
    const body = issueBody('idem-device-1');
    const issuedBefore = await auditEvents('certificate.issued');
    const first = await post('/v1/certificates', body, 'issue-1');
    assert.equal(first.status, 201, first.text);
    const again = await post('/v1/certificates', body, 'issue-1');
    assert.equal(again.status, 201, again.text);
    assert.deepEqual(again.body, first.body, 'the same answer, byte for byte as JSON');
    assert.equal(again.headers['content-type'], first.headers['content-type']);
    assert.equal(await count('certificates', 'id = ?', [first.body.id]), 1);
    assert.equal(await auditEvents('certificate.issued'), issuedBefore + 1, 'one issuance audited');

    const other = await post('/v1/certificates', issueBody('idem-device-2'), 'issue-1');
    assert.equal(other.status, 422, other.text);
    assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(await auditEvents('certificate.issued'), issuedBefore + 1, 'nothing issued on the refusal');

    // Without a key, nothing changes: two requests, two certificates.
    const [a, b] = [await post('/v1/certificates', body), await post('/v1/certificates', body)];
    assert.notEqual(a.body.id, b.body.id);
  });

  it('keys belong to one caller: another API key with the same key and body issues its own certificate', async () => {
    const operator = await admin('/v1/api-keys', { name: 'idem operator', role: 'operator' });
    const body = issueBody('idem-device-3');
    const mine = await post('/v1/certificates', body, 'shared-key');
    const theirs = await t.http().post('/v1/certificates').set(bearer(operator.key)).set('Idempotency-Key', 'shared-key').send(body);
    assert.equal(theirs.status, 201, theirs.text);
    assert.notEqual(theirs.body.id, mine.body.id);
  });

  it('refuses a malformed Idempotency-Key with a 400, before anything runs', async () => {
    const issued = await auditEvents('certificate.issued');
    for (const key of ['x'.repeat(129), 'with space', 'tab\there']) {
      const res = await post('/v1/certificates', issueBody('idem-bad-key'), key);
      assert.equal(res.status, 400, `${JSON.stringify(key)}: ${res.text}`);
      assert.equal(res.body.code, 'VALIDATION_FAILED');
    }
    assert.equal(await auditEvents('certificate.issued'), issued);
  });

  it('a refused request is not stored: its key is free for the corrected request', async () => {
    const refused = await post('/v1/certificates', { ...issueBody('idem-refused'), profile: 'no-such-profile' }, 'fix-and-retry');
    assert.ok(refused.status >= 400 && refused.status < 500, refused.text);
    const fixed = await post('/v1/certificates', issueBody('idem-fixed'), 'fix-and-retry');
    assert.equal(fixed.status, 201, fixed.text);
    const again = await post('/v1/certificates', { ...issueBody('idem-refused'), profile: 'no-such-profile' }, 'fix-and-retry');
    assert.equal(again.body.code, 'IDEMPOTENCY_KEY_REUSED', 'the key now belongs to the request that succeeded');
  });

  it('50 concurrent duplicates of POST /v1/certificates: one certificate; every answer is it or IDEMPOTENCY_REQUEST_IN_PROGRESS', async () => {
    const body = issueBody('idem-race');
    const issued = await auditEvents('certificate.issued');
    const certificates = await count('certificates');
    const answers = await Promise.all(Array.from({ length: 50 }, () => post('/v1/certificates', body, 'race-issue')));
    assertOneEffect(answers, 201);
    assert.equal(await auditEvents('certificate.issued'), issued + 1);
    assert.equal(await count('certificates'), certificates + 1, 'one row');
    // Once it is over, every retry is the replay.
    const late = await post('/v1/certificates', body, 'race-issue');
    assert.deepEqual(late.body, winner(answers, 201));
  });

  it('50 concurrent duplicates of a revocation: revoked once, one audit event, the same answer replayed', async () => {
    const cert = await admin('/v1/certificates', issueBody('idem-revoke'));
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(`/v1/certificates/${cert.id}/revoke`, { reason: 'keyCompromise' }, 'race-revoke')));
    assertOneEffect(answers, 200);
    assert.equal(await count('audit_events', 'action = ? AND target_id = ?', ['certificate.revoked', cert.id]), 1);
    const late = await post(`/v1/certificates/${cert.id}/revoke`, { reason: 'keyCompromise' }, 'race-revoke');
    assert.equal(late.status, 200, 'the stored 200, not CERTIFICATE_ALREADY_REVOKED');
    assert.deepEqual(late.body, winner(answers, 200));
    const otherReason = await post(`/v1/certificates/${cert.id}/revoke`, { reason: 'superseded' }, 'race-revoke');
    assert.equal(otherReason.body.code, 'IDEMPOTENCY_KEY_REUSED');
  });

  it('50 concurrent duplicates of POST /v1/claims (with a CSR): one claim, one claim certificate', async () => {
    const body = claimBody('idem race claim', { csr: deviceKeyAndCsr('idem-claim').csrPem });
    const answers = await Promise.all(Array.from({ length: 50 }, () => post('/v1/claims', body, 'race-claim')));
    assertOneEffect(answers, 201);
    assert.equal(await count('claims', 'name = ?', ['idem race claim']), 1);
    assert.equal(await auditEvents('claim.created') >= 1, true);
    assert.equal(await count('audit_events', 'action = ? AND target_id = ?', ['claim.created', winner(answers, 201).id]), 1);
    const late = await post('/v1/claims', body, 'race-claim');
    assert.deepEqual(late.body, winner(answers, 201));
  });

  it('an answer holding a private key is never stored: the retry is a 409 IDEMPOTENCY_ANSWER_NOT_REPLAYABLE, nothing issued again', async () => {
    const body = claimBody('idem keyed claim', { generateKey: true });
    const first = await post('/v1/claims', body, 'claim-with-key');
    assert.equal(first.status, 201, first.text);
    assert.match(first.body.claimCertificate.privateKeyPem, /PRIVATE KEY/);
    const again = await post('/v1/claims', body, 'claim-with-key');
    assert.equal(again.status, 409, again.text);
    assert.equal(again.body.code, 'IDEMPOTENCY_ANSWER_NOT_REPLAYABLE');
    assert.equal(await count('claims', 'name = ?', ['idem keyed claim']), 1);

    // The same with ?format=p12: the password is not in the request hash, the file is not stored.
    const p12 = await post('/v1/claims?format=p12', { ...claimBody('idem p12 claim', { generateKey: true }), pkcs12Password: 'correct horse battery' }, 'claim-p12');
    assert.equal(p12.status, 201, p12.text);
    const p12Again = await post('/v1/claims?format=p12', { ...claimBody('idem p12 claim', { generateKey: true }), pkcs12Password: 'correct horse battery' }, 'claim-p12');
    assert.equal(p12Again.status, 409);
    assert.equal(p12Again.body.code, 'IDEMPOTENCY_ANSWER_NOT_REPLAYABLE');
    assert.match(p12Again.body.detail, new RegExp(`/v1/claims/${p12.headers['x-claim-id']}`), 'the retry is told where the claim is');
    assert.equal(await count('claims', 'name = ?', ['idem p12 claim']), 1);

    // API keys: the secret is shown once, never stored with the answer.
    const key = await post('/v1/api-keys', { name: 'idem key', role: 'auditor' }, 'api-key-1');
    assert.equal(key.status, 201, key.text);
    const keyAgain = await post('/v1/api-keys', { name: 'idem key', role: 'auditor' }, 'api-key-1');
    assert.equal(keyAgain.body.code, 'IDEMPOTENCY_ANSWER_NOT_REPLAYABLE');
    assert.equal(await count('api_keys', 'name = ?', ['idem key']), 1);

    const rows = await sql<{ state: string; body: string | null }>('SELECT state, response_body AS body FROM idempotency_records');
    for (const row of rows) {
      if (row.body === null) continue;
      const text = Buffer.from(row.body, 'base64').toString('latin1');
      assert.doesNotMatch(text, /PRIVATE KEY/);
      assert.ok(!text.includes(key.body.key), 'no API key secret in the database');
    }
    assert.ok(rows.filter((row) => row.state === 'not_replayable').length >= 3);
  });

  it('every other kind of POST: the retry answers the same and adds no row and no audit event', async () => {
    const cert = await admin('/v1/certificates', issueBody('idem-kinds'));
    const claim = await admin('/v1/claims', claimBody('idem kinds claim', { csr: deviceKeyAndCsr('idem-kinds-claim').csrPem }));
    const rotating = await admin('/v1/authorities', { name: 'Idem Rotating', type: 'intermediate', parentId: root.id, subject: { commonName: 'Idem Rotating CA' } });
    const kinds: { path: string; body: object; table: string; status: number }[] = [
      { path: '/v1/authorities', body: { name: 'Idem Root 2', type: 'root', subject: { commonName: 'Idem Root 2' } }, table: 'authorities', status: 201 },
      { path: '/v1/est/labels', body: { label: 'idem-ops', kind: 'authority', authorityId: deviceCa.id, profile: 'device' }, table: 'est_labels', status: 201 },
      { path: `/v1/claims/${claim.id}/revoke`, body: { reason: 'cessationOfOperation' }, table: 'claims', status: 200 },
      {
        path: '/v1/rotations',
        body: { selector: { certificateIds: [cert.id] }, reason: 'idem', deadline: new Date(clock.now().getTime() + 24 * HOUR).toISOString(), onDeadline: 'report' },
        table: 'rotation_campaigns',
        status: 201,
      },
      { path: `/v1/certificates/${cert.id}/revoke`, body: { reason: 'superseded' }, table: 'certificates', status: 200 },
      { path: `/v1/authorities/${rotating.id}/rotate`, body: {}, table: 'authorities', status: 201 },
    ];
    for (const kind of kinds) {
      const first = await post(kind.path, kind.body, `kind:${kind.path}`);
      if (first.status !== kind.status) assert.fail(`${kind.path}: ${first.status} ${first.text}`);
      const rows = await count(kind.table);
      const events = await count('audit_events');
      const again = await post(kind.path, kind.body, `kind:${kind.path}`);
      assert.equal(again.status, kind.status, `${kind.path}: ${again.text}`);
      assert.deepEqual(again.body, first.body, kind.path);
      assert.equal(await count(kind.table), rows, `${kind.path}: no new row`);
      assert.equal(await count('audit_events'), events, `${kind.path}: no new audit event`);
    }
    // Disabling last: the authority issues nothing after it.
    const disable = await post(`/v1/authorities/${root.id}/disable`, {}, 'disable-root');
    const disableAgain = await post(`/v1/authorities/${root.id}/disable`, {}, 'disable-root');
    assert.equal(disable.status, 200, disable.text);
    assert.deepEqual(disableAgain.body, disable.body);
  });

  it('EST simpleenroll retried with the same key: the same certificate (PKCS #7), issued once', async () => {
    await admin('/v1/est/labels', { label: 'idem-est', kind: 'authority', authorityId: deviceCa.id, profile: 'device', validityDays: 30 });
    const der = Buffer.from(deviceKeyAndCsr('idem-est-device').csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const body = der.toString('base64');
    const issued = await auditEvents('certificate.issued');
    const first = await post('/.well-known/est/idem-est/simpleenroll', body, 'est-1', 'application/pkcs10');
    assert.equal(first.status, 200, first.text);
    const again = await post('/.well-known/est/idem-est/simpleenroll', body, 'est-1', 'application/pkcs10');
    assert.equal(again.status, 200, again.text);
    assert.equal(again.text, first.text, 'the same PKCS #7, byte for byte');
    assert.equal(again.headers['content-type'], first.headers['content-type']);
    assert.equal(again.headers['content-transfer-encoding'], 'base64');
    assert.equal(await auditEvents('certificate.issued'), issued + 1);
  });

  it('records are kept IDEMPOTENCY_RETENTION_HOURS, then pruned: the key then starts a new request', async () => {
    const body = issueBody('idem-retention');
    const first = await post('/v1/certificates', body, 'retention-1');
    assert.equal(first.status, 201);
    clock.advance(23 * HOUR);
    assert.deepEqual((await post('/v1/certificates', body, 'retention-1')).body, first.body, 'still replayed within 24 h');
    clock.advance(2 * HOUR);
    const pruned = await t.app.get(IdempotencyInterceptor).prune();
    assert.ok(pruned >= 1, `pruned ${pruned}`);
    assert.equal(await count('idempotency_records', 'idempotency_key = ?', ['retention-1']), 0);
    const after = await post('/v1/certificates', body, 'retention-1');
    assert.equal(after.status, 201, after.text);
    assert.notEqual(after.body.id, first.body.id, 'a new request: a new certificate');
  });

  it('POST /v1/certificates/renew retried with the same key (a new single-use token each time): the same new certificate, renewed once', async () => {
    const device = deviceKeyAndCsr('idem-renew');
    const cert = await admin('/v1/certificates', { authorityId: deviceCa.id, csr: device.csrPem, profile: 'device', validityDays: 3, thingName: 'idem-renew' });
    clock.advance(60 * HOUR); // into the last third of its lifetime: the renewal window
    const body = { csr: deviceKeyAndCsr('idem-renew').csrPem };
    const renew = () => {
      const now = Math.floor(clock.now().getTime() / 1000);
      const token = deviceToken(t, cert.certificatePem, device.privateKey, { iat: now, exp: now + 120 });
      return t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${token}`).set('Idempotency-Key', 'renew-1').send(body);
    };
    const certificates = await count('certificates');
    const first = await renew();
    assert.equal(first.status, 201, first.text);
    const again = await renew();
    assert.equal(again.status, 201, again.text);
    assert.deepEqual(again.body, first.body);
    assert.equal(await count('certificates'), certificates + 1, 'one new certificate');
    assert.equal(await count('audit_events', 'action = ? AND target_id = ?', ['certificate.superseded', cert.id]), 1);
  });

  /** Exactly one answer is the effect; the others are the same answer replayed or "still running". */
  function assertOneEffect(answers: Response[], status: number): void {
    const statuses = answers.map((res) => `${res.status} ${res.body?.code ?? ''}`).join(', ');
    const successes = answers.filter((res) => res.status === status);
    assert.ok(successes.length >= 1, statuses);
    for (const res of successes) assert.deepEqual(res.body, successes[0].body, 'every success is the same answer');
    for (const res of answers.filter((r) => r.status !== status)) {
      assert.equal(res.status, 409, statuses);
      assert.equal(res.body.code, 'IDEMPOTENCY_REQUEST_IN_PROGRESS', statuses);
      assert.equal(res.headers['retry-after'], '1');
    }
  }

  function winner(answers: Response[], status: number): Body {
    return answers.find((res) => res.status === status)!.body;
  }
});

/** Replicas share PostgreSQL: the key is decided there, not in either process (docs/idempotency.md). */
describe('Idempotency-Key across two replicas on postgres', { skip: drivers().find((d) => d.driver === 'postgres')!.skip }, () => {
  let replicas: Awaited<ReturnType<typeof startReplicas>>;

  before(async () => {
    replicas = await startReplicas('postgres');
  });
  after(async () => {
    await replicas?.close();
  });

  it('50 duplicates of POST /v1/certificates split between the replicas: one certificate', async () => {
    const { a, b } = replicas;
    const create = async (path: string, body: object) => (await a.http().post(path).set(bearer(a.adminKey)).send(body).expect(201)).body;
    const rootCa = await create('/v1/authorities', { name: 'Replica Root', type: 'root', subject: { commonName: 'Replica Root' } });
    const issuing = await create('/v1/authorities', { name: 'Replica Devices', type: 'intermediate', parentId: rootCa.id, subject: { commonName: 'Replica Devices CA' } });
    const body = { authorityId: issuing.id, csr: deviceKeyAndCsr('replica-device').csrPem, profile: 'device', validityDays: 30 };
    // Both replicas share the bootstrap admin key's record (the first made it): use a's key on both.
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).http().post('/v1/certificates').set(bearer(a.adminKey)).set('Idempotency-Key', 'replica-race').send(body)),
    );
    const successes = answers.filter((res) => res.status === 201);
    assert.ok(successes.length >= 1, answers.map((res) => res.status).join(','));
    for (const res of successes) assert.deepEqual(res.body, successes[0].body);
    for (const res of answers.filter((r) => r.status !== 201)) assert.equal(res.body.code, 'IDEMPOTENCY_REQUEST_IN_PROGRESS', res.text);
    const [row] = await a.app.get(TypeOrmTransactions).sql<{ n: string }>('SELECT COUNT(*) AS n FROM certificates WHERE authority_id = ?', [issuing.id]);
    assert.equal(Number(row.n), 1, 'one certificate');
  });
});
