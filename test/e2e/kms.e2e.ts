import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  GetPublicKeyCommand,
  KMSClient,
  ListAliasesCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { DataSource } from 'typeorm';
import { buildCsr } from '../support/csr-builder';
import { KmsStandIn } from '../support/kms-standin';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, startTestApp, TestApp } from '../support/test-app';

function sdk(kms: KmsStandIn): KMSClient {
  return new KMSClient({ region: kms.region, endpoint: kms.endpoint, maxAttempts: 1 });
}

/** A root whose KMS key signs the devices of these tests itself (allowLeafIssuance), so each issue is one KMS Sign. */
async function kmsRoot(t: TestApp, extra: Record<string, unknown> = {}): Promise<{ id: string; certificatePem: string }> {
  const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
    name: 'KMS root',
    type: 'root',
    allowLeafIssuance: true,
    keyBackend: 'aws-kms',
    subject: { commonName: 'KMS Root CA' },
    ...extra,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

function issue(t: TestApp, authorityId: string, thingName: string) {
  return t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId, csr: buildCsr({ commonName: thingName }), profile: 'device', thingName });
}

async function certificateCount(t: TestApp): Promise<number> {
  const [row] = await t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM certificates');
  return Number(row.n);
}

describe('AWS KMS backend: keys, adoption and readiness', () => {
  let kms: KmsStandIn;
  let t: TestApp;
  let client: KMSClient;
  const ssl = new OpenSslWorkspace();

  before(async () => {
    kms = await new KmsStandIn().start();
    t = await startTestApp('sqlite', { kms, env: { KMS_READY_CACHE_SECONDS: '0' } });
    client = sdk(kms);
  });
  after(async () => {
    await t?.close();
    await kms?.stop();
    ssl.cleanup();
  });

  it('creates the CA key in KMS as SIGN_VERIFY, tagged with the authority id and aliased', async () => {
    const ca = await kmsRoot(t, { keySpec: 'EC_P384' });
    assert.match((ca as unknown as { kmsKeyArn: string }).kmsKeyArn, /^arn:aws:kms:us-east-1:111122223333:key\//);
    const aliases = await client.send(new ListAliasesCommand({}));
    const alias = aliases.Aliases!.find((a) => a.AliasName === `alias/fleet-pki/${ca.id}`);
    assert.ok(alias, 'alias/fleet-pki/<authority id> exists');
    const publicKey = await client.send(new GetPublicKeyCommand({ KeyId: alias.AliasName }));
    assert.equal(publicKey.KeyUsage, 'SIGN_VERIFY');
    assert.equal(publicKey.KeySpec, 'ECC_NIST_P384');
    const certSpki = ssl.run(['x509', '-in', ssl.file('ca.pem', ca.certificatePem), '-noout', '-pubkey']).output;
    const kmsSpki = Buffer.from(publicKey.PublicKey!).toString('base64');
    assert.equal(certSpki.replace(/-----[A-Z ]+-----|\s/g, ''), kmsSpki, 'the CA certificate carries the KMS public key');
  });

  it('adopts an existing key by id, by ARN and by alias, and refuses a second authority on the same key', async () => {
    for (const [i, how] of ['id', 'arn', 'alias'].entries()) {
      const created = await client.send(new CreateKeyCommand({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' }));
      let kmsKeyId = how === 'id' ? created.KeyMetadata!.KeyId! : created.KeyMetadata!.Arn!;
      if (how === 'alias') {
        kmsKeyId = `alias/existing-ca-${i}`;
        await client.send(new CreateAliasCommand({ AliasName: kmsKeyId, TargetKeyId: created.KeyMetadata!.KeyId }));
      }
      const ca = await kmsRoot(t, { kmsKeyId, name: `adopted by ${how}` });
      const spki = Buffer.from((await client.send(new GetPublicKeyCommand({ KeyId: created.KeyMetadata!.Arn }))).PublicKey!).toString('base64');
      const certSpki = ssl.run(['x509', '-in', ssl.file(`a${i}.pem`, ca.certificatePem), '-noout', '-pubkey']).output.replace(/-----[A-Z ]+-----|\s/g, '');
      assert.equal(certSpki, spki);
      const again = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
        name: 'twice', type: 'root', keyBackend: 'aws-kms', kmsKeyId, subject: { commonName: 'Twice' },
      });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'AUTHORITY_KEY_IN_USE');
    }
  });

  it('refuses to adopt keys that cannot be CA keys', async () => {
    const encrypt = await client.send(new CreateKeyCommand({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_2048' }));
    const p256 = await client.send(new CreateKeyCommand({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' }));
    const disabled = await client.send(new CreateKeyCommand({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' }));
    await client.send(new DisableKeyCommand({ KeyId: disabled.KeyMetadata!.KeyId }));
    const cases: [string, Record<string, unknown>, number, string][] = [
      ['an encryption key', { kmsKeyId: encrypt.KeyMetadata!.Arn }, 422, 'KMS_KEY_NOT_SUITABLE'],
      ['a key of another spec than asked', { kmsKeyId: p256.KeyMetadata!.Arn, keySpec: 'RSA_2048' }, 422, 'KEY_SPEC_MISMATCH'],
      ['a key that does not exist', { kmsKeyId: 'alias/no-such-key' }, 422, 'KMS_KEY_NOT_SUITABLE'],
      ['a disabled key', { kmsKeyId: disabled.KeyMetadata!.KeyId }, 409, 'AUTHORITY_KEY_UNUSABLE'],
      ['kmsKeyId with the local backend', { kmsKeyId: p256.KeyMetadata!.Arn, keyBackend: 'local' }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [name, body, status, code] of cases) {
      const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
        name, type: 'root', keyBackend: 'aws-kms', subject: { commonName: 'Refused' }, ...body,
      });
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, code, name);
    }
  });

  it('answers 409 AUTHORITY_KEY_UNUSABLE for a disabled or deleted key, and /readyz names the authority', async () => {
    const ca = await kmsRoot(t, { name: 'to disable' });
    const keyId = `alias/fleet-pki/${ca.id}`;
    assert.equal((await issue(t, ca.id, 'before-disable')).status, 201);
    assert.equal((await t.http().get('/readyz')).status, 200);

    await client.send(new DisableKeyCommand({ KeyId: keyId }));
    const refused = await issue(t, ca.id, 'while-disabled');
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'AUTHORITY_KEY_UNUSABLE');
    const ready = await t.http().get('/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.code, 'NOT_READY');
    assert.equal(ready.body.checks[`authority:${ca.id}`], 'aws-kms key AUTHORITY_KEY_UNUSABLE');

    await client.send(new EnableKeyCommand({ KeyId: keyId }));
    assert.equal((await issue(t, ca.id, 'after-enable')).status, 201);
    assert.equal((await t.http().get('/readyz')).status, 200);

    await client.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    const deleted = await issue(t, ca.id, 'after-delete');
    assert.equal(deleted.status, 409);
    assert.equal(deleted.body.code, 'AUTHORITY_KEY_UNUSABLE');
    // Keep the other tests' readiness clean.
    await t.http().post(`/v1/authorities/${ca.id}/disable`).set(bearer(t.adminKey));
  });

  it('sends KMS only a digest of the exact length for the algorithm', async () => {
    const signsBefore = kms.calls.get('Sign') ?? 0;
    const ca = await kmsRoot(t, { keySpec: 'RSA_2048', name: 'rsa' });
    const res = await issue(t, ca.id, 'rsa-signed');
    assert.equal(res.status, 201);
    assert.equal((kms.calls.get('Sign') ?? 0) - signsBefore, 2, 'one signature for the CA certificate, one for the device certificate');
  });
});

describe('AWS KMS backend: faults', () => {
  let kms: KmsStandIn;
  let t: TestApp;
  let patient: TestApp;
  let rootId: string;

  before(async () => {
    kms = await new KmsStandIn().start();
    // Fails fast: for outage tests.
    t = await startTestApp('sqlite', { kms, env: { KMS_MAX_ATTEMPTS: '2', KMS_REQUEST_TIMEOUT_MS: '2000' } });
    // Retries hard: for the throttling test (0.5^16 ≈ 1.5e-5 chance that one signature runs out of attempts).
    patient = await startTestApp('sqlite', { kms, env: { KMS_MAX_ATTEMPTS: '16' } });
    rootId = (await kmsRoot(t)).id;
  });
  after(async () => {
    await t?.close();
    await patient?.close();
    await kms?.stop();
  });

  it('issues every certificate exactly once while KMS throttles half of all calls', async () => {
    const ca = await kmsRoot(patient, { name: 'throttled' });
    kms.configure({ throttleProbability: 0.5 });
    const throttledBefore = kms.throttled;
    try {
      const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => issue(patient, ca.id, `throttled-${i}`)));
      assert.deepEqual(responses.filter((r) => r.status !== 201).map((r) => JSON.stringify(r.body)), []);
      assert.equal(new Set(responses.map((r) => r.body.serial)).size, 30);
      assert.ok(kms.throttled - throttledBefore >= 5, `the stand-in did throttle (${kms.throttled - throttledBefore} times)`);
    } finally {
      kms.configure({ throttleProbability: 0 });
    }
    const list = await patient.http().get('/v1/certificates').query({ authorityId: ca.id, limit: 500 }).set(bearer(patient.adminKey));
    assert.equal(list.body.items.length, 30, 'no duplicate rows from retried signatures');
    assert.equal(new Set(list.body.items.map((c: { thingName: string }) => c.thingName)).size, 30);
  });

  it('answers 503 KEY_BACKEND_THROTTLED with Retry-After when throttling outlives the retries', async () => {
    kms.configure({ throttleProbability: 1 });
    try {
      const before = await certificateCount(t);
      const res = await issue(t, rootId, 'always-throttled');
      assert.equal(res.status, 503);
      assert.equal(res.body.code, 'KEY_BACKEND_THROTTLED');
      assert.match(res.headers['content-type'], /application\/problem\+json/);
      assert.equal(res.headers['retry-after'], '1');
      assert.equal(await certificateCount(t), before);
    } finally {
      kms.configure({ throttleProbability: 0 });
    }
  });

  for (const failureMode of ['drop', 'http500'] as const) {
    it(`answers 503 KEY_BACKEND_UNAVAILABLE and stores nothing while KMS ${failureMode === 'drop' ? 'drops connections' : 'answers 500'}, then recovers without restart`, async () => {
      const before = await certificateCount(t);
      const auditBefore = (await t.http().get('/v1/audit').query({ action: 'certificate.issued', limit: 500 }).set(bearer(t.adminKey))).body.items.length;
      kms.configure({ failureMode });
      try {
        const res = await issue(t, rootId, `down-${failureMode}`);
        assert.equal(res.status, 503, JSON.stringify(res.body));
        assert.equal(res.body.code, 'KEY_BACKEND_UNAVAILABLE');
        assert.match(res.headers['content-type'], /application\/problem\+json/);
        assert.doesNotMatch(JSON.stringify(res.body), /arn:aws|Stack|at /, 'no internals in the problem');
      } finally {
        kms.configure({ failureMode: 'none' });
      }
      assert.equal(await certificateCount(t), before, 'nothing persisted as issued');
      const auditAfter = (await t.http().get('/v1/audit').query({ action: 'certificate.issued', limit: 500 }).set(bearer(t.adminKey))).body.items.length;
      assert.equal(auditAfter, auditBefore);
      assert.equal((await issue(t, rootId, `recovered-${failureMode}`)).status, 201);
    });
  }

  it('answers 503 when the KMS endpoint is gone altogether, and recovers when it is back', async () => {
    const port = Number(new URL(kms.endpoint).port);
    await kms.stop();
    try {
      const res = await issue(t, rootId, 'stopped');
      assert.equal(res.status, 503);
      assert.equal(res.body.code, 'KEY_BACKEND_UNAVAILABLE');
      const ready = await t.http().get('/readyz');
      assert.equal(ready.status, 503);
      const ca = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
        name: 'while down', type: 'root', keyBackend: 'aws-kms', subject: { commonName: 'Down' },
      });
      assert.equal(ca.status, 503);
      const names = (await t.http().get('/v1/authorities').set(bearer(t.adminKey))).body.items.map((a: { name: string }) => a.name);
      assert.ok(!names.includes('while down'));
    } finally {
      await kms.start(port);
    }
    assert.equal((await issue(t, rootId, 'restarted')).status, 201);
  });

  it('keeps at most KMS_MAX_CONCURRENCY_PER_KEY signatures in flight per key', async () => {
    const limited = await startTestApp('sqlite', { kms, env: { KMS_MAX_CONCURRENCY_PER_KEY: '2' } });
    try {
      const ca = await kmsRoot(limited, { name: 'limited' });
      kms.configure({ latencyMs: 50 });
      let inFlight = 0;
      let peak = 0;
      const original = kms.onSign;
      kms.onSign = (phase) => {
        inFlight += phase === 'start' ? 1 : -1;
        peak = Math.max(peak, inFlight);
      };
      try {
        const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => issue(limited, ca.id, `limited-${i}`)));
        assert.ok(responses.every((r) => r.status === 201));
      } finally {
        kms.onSign = original;
        kms.configure({ latencyMs: 0 });
      }
      assert.equal(peak, 2);
    } finally {
      await limited.close();
    }
  });
});

