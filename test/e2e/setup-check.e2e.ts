import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DataSource } from 'typeorm';
import { IotStandIn, KmsStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';
import { freePort } from '../support/free-port';

/**
 * GET /v1/setup/check over HTTP: what it reports for a bare deployment (no AWS: nothing called), for one
 * with AWS IoT, KMS and a JITR registration behind a private-CA HTTPS front (the case where AWS would never
 * deliver a JITR event), and for an unreachable PUBLIC_BASE_URL (answered within the time bound).
 */

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail' | 'skipped';
  detail: string;
  reason?: string;
  chain?: { subject: string; issuer: string; notAfter: string; sha256: string }[];
}

async function report(t: TestApp): Promise<{ status: string; checkedAt: string; checks: Check[] }> {
  const res = await t.http().get('/v1/setup/check').set(bearer(t.adminKey));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

function check(body: { checks: Check[] }, name: string): Check {
  const found = body.checks.find((c) => c.name === name);
  assert.ok(found, `no check ${name} in ${JSON.stringify(body.checks.map((c) => c.name))}`);
  return found;
}


for (const { driver, skip } of drivers()) {
  describe(`GET /v1/setup/check without AWS (${driver})`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(driver);
    });
    after(async () => {
      await t?.close();
    });

    it('is for admins only', async () => {
      for (const role of ['operator', 'auditor'] as const) {
        const key = await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: `setup ${role}`, role });
        const res = await t.http().get('/v1/setup/check').set(bearer(key.body.key));
        assert.equal(res.status, 403, role);
      }
      assert.equal((await t.http().get('/v1/setup/check')).status, 401);
    });

    it('reports the database and local keys ok, skips every AWS check, and says an http:// base URL cannot receive JITR events', async () => {
      await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Setup Root', type: 'root', subject: { commonName: 'Setup Root CA' } });
      const body = await report(t);
      assert.equal(check(body, 'database').status, 'ok');
      assert.match(check(body, 'database').detail, new RegExp(`${driver}: reachable, all \\d+ migrations applied`));
      assert.equal(check(body, 'key-backend:local').status, 'ok');
      assert.match(check(body, 'key-backend:local').detail, /all 1 active CA/);
      for (const name of ['key-backend:aws-kms', 'aws-credentials', 'aws-iot', 'iot-events-secret', 'iot-events-destination-arn', 'iot-topic-rule-destination']) {
        assert.equal(check(body, name).status, 'skipped', name);
      }
      assert.match(check(body, 'aws-credentials').detail, /AWS_REGION .* not set.*no call made/);
      const tlsCheck = check(body, 'public-base-url-tls');
      assert.equal(tlsCheck.reason, 'not-https');
      assert.equal(tlsCheck.status, 'warn', 'no CA uses JITR: a warning, not a failure');
      assert.match(tlsCheck.detail, /^http:\/\/localhost:\d+\/v1\/iot\/events: not publicly trusted: .*https:\/\/ URLs only.*would never arrive/);
      assert.equal(body.status, 'warn');
      assert.ok(!Number.isNaN(Date.parse(body.checkedAt)));
    });

    it('reports migrations the database lacks, and ones this version does not know', async () => {
      const db = t.app.get(DataSource);
      const last = db.migrations[db.migrations.length - 1].name!;
      const [row] = (await db.query(`SELECT id, timestamp, name FROM schema_migrations WHERE name = '${last}'`)) as { id: number; timestamp: string; name: string }[];
      await db.query(`DELETE FROM schema_migrations WHERE name = '${last}'`);
      try {
        const database = check(await report(t), 'database');
        assert.equal(database.status, 'fail');
        assert.match(database.detail, new RegExp(`1 migration\\(s\\) not applied \\(${last}\\): run npm run migrate`));
      } finally {
        await db.query(`INSERT INTO schema_migrations (id, timestamp, name) VALUES (${row.id}, ${row.timestamp}, '${row.name}')`);
      }
      await db.query(`INSERT INTO schema_migrations (id, timestamp, name) VALUES (99999, 9999999999999, 'FromTheFuture9999999999999')`);
      try {
        const database = check(await report(t), 'database');
        assert.equal(database.status, 'warn');
        assert.match(database.detail, /FromTheFuture9999999999999/);
      } finally {
        await db.query(`DELETE FROM schema_migrations WHERE id = 99999`);
      }
      assert.equal(check(await report(t), 'database').status, 'ok');
    });
  });
}

describe('GET /v1/setup/check with AWS IoT, KMS and JITR behind a private-CA HTTPS front', () => {
  const ssl = new OpenSslWorkspace();
  let kms: KmsStandIn;
  let iot: IotStandIn;
  let front: tls.Server;
  let t: TestApp;
  let kmsCaId: string;

  before(async () => {
    // The "load balancer": HTTPS on localhost with a certificate from a private CA.
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    const made = [
      ssl.run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Corp Private Root', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']),
      ssl.run(['req', '-new', ...ec, '-keyout', 'front.key', '-out', 'front.csr', '-subj', '/CN=localhost']),
    ];
    ssl.file('ext.cnf', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
    made.push(ssl.run(['x509', '-req', '-in', 'front.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'front.pem', '-days', '1', '-extfile', 'ext.cnf']));
    for (const m of made) assert.equal(m.status, 0, m.output);
    front = tls.createServer({ cert: fs.readFileSync(ssl.file('front.pem')), key: fs.readFileSync(ssl.file('front.key')) }, (s) => s.end());
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const frontPort = (front.address() as net.AddressInfo).port;

    kms = await new KmsStandIn().start();
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', {
      kms,
      iot,
      env: { PUBLIC_BASE_URL: `https://localhost:${frontPort}`, KMS_READY_CACHE_SECONDS: '0', IOT_MAX_ATTEMPTS: '1' },
    });
    const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'KMS Root', type: 'root', keyBackend: 'aws-kms', subject: { commonName: 'KMS Root CA' } });
    assert.equal(root.status, 201, JSON.stringify(root.body));
    kmsCaId = root.body.id;
    const issuing = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'JITR Issuing', type: 'intermediate', parentId: kmsCaId, subject: { commonName: 'JITR Issuing CA' } });
    const registered = await t.http().post(`/v1/authorities/${issuing.body.id}/iot-registration`).set(bearer(t.adminKey)).send({
      certificateMode: 'SNI_ONLY',
      deviceRegistration: 'jitr',
      policyName: 'fleet-device',
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
  });

  after(async () => {
    await t?.close();
    await iot?.stop();
    await kms?.stop();
    front?.close();
    ssl.cleanup();
  });

  it('fails the TLS check with the reason and the chain, and the JITR settings the deployment lacks', async () => {
    const callsBefore = iot.calls.get('GetRegistrationCode') ?? 0;
    const body = await report(t);
    assert.equal(body.status, 'fail');

    const tlsCheck = check(body, 'public-base-url-tls');
    assert.equal(tlsCheck.status, 'fail', 'a CA uses JITR: an untrusted front is a failure');
    assert.equal(tlsCheck.reason, 'untrusted-issuer');
    assert.match(tlsCheck.detail, /^https:\/\/localhost:\d+\/v1\/iot\/events: not publicly trusted: .*private CA.*JITR event would never arrive/);
    assert.deepEqual(tlsCheck.chain!.map((c) => [c.subject, c.issuer]), [['CN=localhost', 'CN=Corp Private Root']]);
    assert.match(tlsCheck.chain![0].sha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

    assert.equal(check(body, 'iot-events-secret').status, 'fail');
    assert.match(check(body, 'iot-events-secret').detail, /1 active CA registration\(s\) use JITR, but IOT_EVENTS_SECRET is not set/);
    assert.equal(check(body, 'iot-events-destination-arn').status, 'warn');
    assert.equal(check(body, 'iot-topic-rule-destination').status, 'skipped', 'no ARN: nothing to look up');
    assert.equal(iot.calls.get('GetTopicRuleDestination'), undefined);

    assert.equal(check(body, 'aws-credentials').status, 'ok');
    assert.match(check(body, 'aws-credentials').detail, /region us-east-1; credentials resolved/);
    assert.equal(check(body, 'aws-iot').status, 'ok');
    assert.equal((iot.calls.get('GetRegistrationCode') ?? 0) - callsBefore, 1, 'one GetRegistrationCode');
    assert.equal(check(body, 'key-backend:aws-kms').status, 'ok');
    assert.match(check(body, 'key-backend:aws-kms').detail, /all 1 active CA/);
    assert.equal(check(body, 'key-backend:local').status, 'ok');
  });

  it('names a CA whose KMS key cannot sign, and an AWS IoT that refuses', async () => {
    const arn = (await t.http().get(`/v1/authorities/${kmsCaId}`).set(bearer(t.adminKey))).body.kmsKeyArn as string;
    const client = new KMSClient({ region: kms.region, endpoint: kms.endpoint, maxAttempts: 1 });
    await client.send(new DisableKeyCommand({ KeyId: arn }));
    client.destroy();
    iot.configure({ failureMode: 'http503' });
    try {
      const body = await report(t);
      const kmsCheck = check(body, 'key-backend:aws-kms');
      assert.equal(kmsCheck.status, 'fail');
      assert.match(kmsCheck.detail, new RegExp(`1 of 1 active CA key\\(s\\) cannot sign: ${kmsCaId} \\(KMS Root\\): AUTHORITY_KEY_UNUSABLE`));
      const iotCheck = check(body, 'aws-iot');
      assert.equal(iotCheck.status, 'fail');
      assert.match(iotCheck.detail, /GetRegistrationCode failed: IOT_/);
    } finally {
      iot.configure({ failureMode: 'none' });
    }
  });
});

describe('GET /v1/setup/check with an unreachable PUBLIC_BASE_URL', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    port = await freePort();
    t = await startTestApp('sqlite', { env: { PUBLIC_BASE_URL: `https://127.0.0.1:${port}` } });
  });
  after(async () => {
    await t?.close();
  });

  it('says it cannot reach it, within the time bound', async () => {
    const started = Date.now();
    const body = await report(t);
    const tlsCheck = check(body, 'public-base-url-tls');
    assert.equal(tlsCheck.reason, 'unreachable');
    assert.match(tlsCheck.detail, new RegExp(`127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
    assert.ok(Date.now() - started < 6000);
  });
});
