import assert from 'node:assert/strict';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, IoTClient, RegisterCertificateWithoutCACommand } from '@aws-sdk/client-iot';
import mqtt, { MqttClient } from 'mqtt';
import { buildCsr, deviceKeyAndCsr } from '../../tools/csr-builder';
import { IotDataStandIn, IotStandIn, KmsStandIn, SecretsStandIn } from '../../tools/standins';
import * as provider from '../../integrations/aws-lambda/src/certificate-provider';
import * as preAuth from '../../integrations/aws-lambda/src/client-certificate-check';
import { setLogWriter } from '../../integrations/aws-lambda/src/shared/logger';
import { forgetApiKey } from '../../integrations/aws-lambda/src/shared/api-key';
import { recordSecret } from '../support/log-capture';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, ManualClock, startTestApp, TestApp } from '../support/test-app';

/**
 * AWS IoT fleet provisioning by claim, signed by Fleet PKI (docs/aws-fleet-provisioning.md), played end to end: devices
 * are mqtt.js clients on mutual TLS to the data-plane stand-in (tools/standins/iot-data), which invokes the real Lambda
 * handlers (integrations/aws-lambda/) in process; they read their API key through the real Secrets Manager / SSM SDK
 * clients from the secrets stand-in and call the service over HTTP; the device CA's key is in the KMS stand-in.
 */

const CREATE = '$aws/certificates/create-from-csr/json';
const TEMPLATE_NAME = 'FleetTemplate';
const REGISTER = `$aws/provisioning-templates/${TEMPLATE_NAME}/provision/json`;
const POLICY = 'fleet-device-policy';
// As the deploy kit's template (deploy/lib/fleet-pki-aws-stack.ts): the thing name is the certificate's CN, which is
// the thing name Fleet PKI recorded; the device's own SerialNumber parameter is only an attribute.
const TEMPLATE = JSON.stringify({
  Parameters: { SerialNumber: { Type: 'String' }, 'AWS::IoT::Certificate::CommonName': { Type: 'String' }, 'AWS::IoT::Certificate::Id': { Type: 'String' } },
  Resources: {
    thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' }, AttributePayload: { serial: { Ref: 'SerialNumber' } } } },
    certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' } },
    policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: POLICY } },
  },
  DeviceConfiguration: { telemetryTopic: { 'Fn::Sub': 'devices/${AWS::IoT::Certificate::CommonName}/telemetry' } },
});

interface ClaimCredentials {
  id: string;
  certificatePem: string;
  keyPem: string;
}

type Answer = { topic: string; body: Record<string, unknown> };

for (const { driver, skip } of drivers()) {
  describe(`AWS IoT fleet provisioning with our certificate provider and pre-authentication (${driver})`, { skip }, () => {
    let kms: KmsStandIn;
    let iot: IotStandIn;
    let secrets: SecretsStandIn;
    let data: IotDataStandIn;
    let t: TestApp;
    const clock = new ManualClock();
    const ssl = new OpenSslWorkspace();
    const lambdaLog: string[] = [];
    let previousWriter: (line: string) => void;
    let integrationKey: string;
    let secretArn: string;
    const eventsSecret = `events-${randomUUID()}`;
    let root: { id: string; certificatePem: string };
    let deviceCa: { id: string; certificatePem: string; chainPem: string };
    let claimCa: { id: string };
    const savedEnv = { ...process.env };
    const clients: MqttClient[] = [];

    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies read field by field
    async function admin(path: string, body: unknown, status = 201): Promise<Record<string, any>> {
      const res = await t.http().post(path).set(bearer(t.adminKey)).send(body as object);
      assert.equal(res.status, status, `${path}: ${res.status} ${res.text}`);
      return res.body;
    }

    async function createClaim(extra: Record<string, unknown>): Promise<ClaimCredentials> {
      const claim = await admin('/v1/claims', {
        name: `claim-${randomUUID().slice(0, 8)}`, factory: 'Plant 1', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 100,
        notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'fleet-{serial}', claimCertificate: { generateKey: true }, ...extra,
      });
      recordSecret('claim private key', claim.claimCertificate.privateKeyPem);
      // As the maker does once: register the claim certificate with AWS IoT (ACTIVE, with the claim policy).
      const control = new IoTClient({ region: iot.region, endpoint: iot.endpoint });
      await control.send(new RegisterCertificateWithoutCACommand({ certificatePem: claim.claimCertificate.certificatePem, status: 'ACTIVE' }));
      control.destroy();
      return { id: claim.id, certificatePem: claim.claimCertificate.certificatePem, keyPem: claim.claimCertificate.privateKeyPem };
    }

    function connect(clientId: string, keyPem: string, certPem: string): Promise<MqttClient> {
      const client = mqtt.connect(data.url, {
        clientId, key: keyPem, cert: certPem, ca: data.serverCertificatePem, servername: data.serverName, protocolVersion: 4,
        reconnectPeriod: 0, connectTimeout: 10_000, rejectUnauthorized: true,
      });
      clients.push(client);
      return new Promise((resolve, reject) => {
        client.once('connect', () => resolve(client));
        client.once('error', (err) => {
          client.end(true);
          reject(err);
        });
        client.once('close', () => reject(new Error('connection closed before CONNACK')));
      });
    }

    /** The next message on one of `topics` (its accepted or rejected reply). */
    function nextAnswer(client: MqttClient, request: string): Promise<Answer> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to ${request} within 30 s`)), 30_000);
        const onMessage = (topic: string, payload: Buffer) => {
          if (topic !== `${request}/accepted` && topic !== `${request}/rejected`) return;
          clearTimeout(timer);
          client.off('message', onMessage);
          resolve({ topic, body: JSON.parse(payload.toString('utf8')) as Record<string, unknown> });
        };
        client.on('message', onMessage);
      });
    }

    async function request(client: MqttClient, topic: string, body: unknown): Promise<Answer> {
      const answer = nextAnswer(client, topic);
      await client.publishAsync(topic, JSON.stringify(body), { qos: 1 });
      return answer;
    }

    /** The stock flow's first step, on a connection made with the claim certificate. */
    async function createCertificateFromCsr(claim: ClaimCredentials, csrPem: string): Promise<{ client: MqttClient; answer: Answer }> {
      const client = await connect(`claim-${randomUUID()}`, claim.keyPem, claim.certificatePem);
      await client.subscribeAsync([`${CREATE}/accepted`, `${CREATE}/rejected`, `${REGISTER}/accepted`, `${REGISTER}/rejected`], { qos: 1 });
      return { client, answer: await request(client, CREATE, { certificateSigningRequest: csrPem }) };
    }

    /** A device key and CSR made with openssl, naming the device by the serialNumber attribute. */
    function opensslDevice(serial: string): { keyPem: string; csrPem: string } {
      const key = `device-${serial}.key`;
      const csr = `device-${serial}.csr`;
      const made = ssl.run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/serialNumber=${serial}`]);
      assert.equal(made.status, 0, made.output);
      return { keyPem: fs.readFileSync(ssl.file(key), 'utf8'), csrPem: fs.readFileSync(ssl.file(csr), 'utf8') };
    }

    async function certificateCount(claimId: string): Promise<number> {
      const res = await t.http().get(`/v1/claims/${claimId}`).set(bearer(t.adminKey));
      assert.equal(res.status, 200);
      return res.body.used;
    }

    before(async () => {
      kms = await new KmsStandIn().start();
      iot = await new IotStandIn().start();
      secrets = await new SecretsStandIn().start();
      recordSecret('iot events secret', eventsSecret);
      t = await startTestApp(driver, { kms, iot, clock, env: { IOT_EVENTS_SECRET: eventsSecret } });
      root = await admin('/v1/authorities', { name: 'Fleet Root', type: 'root', keyBackend: 'aws-kms', keySpec: 'EC_P256', subject: { commonName: 'Fleet Root CA' } }) as typeof root;
      deviceCa = await admin('/v1/authorities', { name: 'Fleet Devices', type: 'intermediate', parentId: root.id, keyBackend: 'aws-kms', keySpec: 'EC_P256', subject: { commonName: 'Fleet Devices CA' } }) as typeof deviceCa;
      claimCa = await admin('/v1/authorities', { name: 'Fleet Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Fleet Claims CA' } }) as typeof claimCa;
      integrationKey = (await admin('/v1/api-keys', { name: 'aws lambdas', role: 'aws-integration' })).key;
      recordSecret('aws-integration api key', integrationKey);
      secretArn = secrets.putSecret('fleet-pki/aws-integration', JSON.stringify({ apiKey: integrationKey }));
      secrets.putParameter('/fleet-pki/aws-integration-key', integrationKey);
      Object.assign(process.env, {
        FLEET_PKI_URL: t.baseUrl,
        FLEET_PKI_API_KEY_SECRET_ID: secretArn,
        FLEET_PKI_TIMEOUT_MS: '2000',
        FLEET_PKI_RETRIES: '2',
        STATUS_CACHE_SECONDS: '2',
        AWS_REGION: iot.region,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
        AWS_ENDPOINT_URL_SSM: secrets.endpoint,
      });
      delete process.env.FLEET_PKI_API_KEY_PARAMETER;
      previousWriter = setLogWriter((line) => lambdaLog.push(line));
      const control = new IoTClient({ region: iot.region, endpoint: iot.endpoint });
      await control.send(new CreatePolicyCommand({ policyName: POLICY, policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }));
      control.destroy();
      data = await new IotDataStandIn({ iot, certificateProvider: provider.handler, clientCertificateCheck: preAuth.handler, templates: { [TEMPLATE_NAME]: TEMPLATE } }).start();
    });

    after(async () => {
      for (const client of clients) client.end(true);
      await data?.stop();
      setLogWriter(previousWriter);
      for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
      Object.assign(process.env, savedEnv);
      forgetApiKey();
      preAuth.clearStatusCache();
      await t?.close();
      await secrets?.stop();
      await iot?.stop();
      await kms?.stop();
      ssl.cleanup();
      for (const line of lambdaLog) assert.ok(!line.includes(integrationKey), 'a Lambda log line holds the API key');
    });

    it('provisions a device by the stock flow: certificate from our KMS-backed CA, thing and policy by the template, then it connects and publishes', async () => {
      const claim = await createClaim({ serialPattern: 'SN[0-9]{4}' });
      const device = opensslDevice('SN0001');
      const { client, answer } = await createCertificateFromCsr(claim, device.csrPem);
      assert.equal(answer.topic, `${CREATE}/accepted`, JSON.stringify(answer.body));
      const { certificatePem, certificateId, certificateOwnershipToken } = answer.body as Record<string, string>;
      // Issued by our device CA (key in the KMS stand-in), valid under our chain with openssl's strict checks.
      const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: deviceCa.certificatePem, leafPem: certificatePem });
      assert.ok(verified.ok, verified.output);
      assert.ok(kms.calls.get('Sign')! > 0, 'the device CA key in the KMS stand-in signed');
      const ours = await t.http().get('/v1/certificates').query({ thingName: 'fleet-SN0001' }).set(bearer(t.adminKey));
      assert.equal(ours.body.items.length, 1);
      assert.equal(ours.body.items[0].fingerprint, certificateId);
      assert.equal(ours.body.items[0].authorityId, deviceCa.id);
      assert.equal(iot.certificate(certificateId)?.status, 'PENDING_ACTIVATION');

      // RegisterThing with the template: thing, policy, activation in the IoT stand-in.
      const registered = await request(client, REGISTER, { certificateOwnershipToken, parameters: { SerialNumber: 'SN0001' } });
      assert.equal(registered.topic, `${REGISTER}/accepted`, JSON.stringify(registered.body));
      assert.equal(registered.body.thingName, 'fleet-SN0001');
      assert.equal(registered.body.thingName, ours.body.items[0].thingName, 'the AWS thing name is the thing name Fleet PKI recorded');
      assert.deepEqual(registered.body.deviceConfiguration, { telemetryTopic: 'devices/fleet-SN0001/telemetry' });
      assert.equal(iot.certificate(certificateId)?.status, 'ACTIVE');
      const arn = iot.certificateArn(certificateId);
      assert.deepEqual(iot.thingsOf(arn), ['fleet-SN0001']);
      assert.deepEqual(iot.policiesAttachedTo(arn), [POLICY]);
      assert.equal(iot.thing('fleet-SN0001')?.attributes?.serial, 'SN0001');
      client.end(true);

      // The device's own connection with its new certificate (and chain), then a publish on its own topic.
      const own = await connect('fleet-SN0001', device.keyPem, certificatePem + deviceCa.certificatePem);
      await own.publishAsync('devices/fleet-SN0001/telemetry', JSON.stringify({ t: 21.5 }), { qos: 1 });
      assert.ok(data.messages.some((m) => m.certificateId === certificateId && m.topic === 'devices/fleet-SN0001/telemetry'));
      own.end(true);
      // The exchange is audited as any other, by the integration key, naming the claim certificate.
      const audit = await t.http().get('/v1/audit').query({ action: 'certificate.issued' }).set(bearer(t.adminKey));
      assert.equal(audit.status, 200);
    });

    it('binds the thing to the certificate: a claim holder naming another serial (or CN parameter) still gets only its own thing', async () => {
      const claim = await createClaim({});
      const victim = opensslDevice('VICT01');
      const first = await createCertificateFromCsr(claim, victim.csrPem);
      assert.equal(first.answer.topic, `${CREATE}/accepted`);
      const victimDone = await request(first.client, REGISTER, { certificateOwnershipToken: first.answer.body.certificateOwnershipToken, parameters: { SerialNumber: 'VICT01' } });
      assert.equal(victimDone.topic, `${REGISTER}/accepted`, JSON.stringify(victimDone.body));
      first.client.end(true);
      const victimArn = iot.certificateArn(String(first.answer.body.certificateId));
      assert.deepEqual(iot.thingsOf(victimArn), ['fleet-VICT01']);

      // Another device of the same claim asks for the victim's thing through every device-chosen parameter.
      const attacker = opensslDevice('ATTK01');
      const second = await createCertificateFromCsr(claim, attacker.csrPem);
      assert.equal(second.answer.topic, `${CREATE}/accepted`);
      const attackerId = String(second.answer.body.certificateId);
      const hijack = await request(second.client, REGISTER, {
        certificateOwnershipToken: second.answer.body.certificateOwnershipToken,
        parameters: { SerialNumber: 'VICT01', 'AWS::IoT::Certificate::CommonName': 'fleet-VICT01', ThingName: 'fleet-VICT01' },
      });
      second.client.end(true);
      assert.equal(hijack.topic, `${REGISTER}/accepted`, JSON.stringify(hijack.body));
      const [record] = (await t.http().get('/v1/certificates').query({ thingName: 'fleet-ATTK01' }).set(bearer(t.adminKey))).body.items;
      assert.equal(record.fingerprint, attackerId);
      assert.equal(hijack.body.thingName, record.thingName, 'the thing of its own certificate, as Fleet PKI recorded it');
      assert.deepEqual(iot.thingsOf(iot.certificateArn(attackerId)), ['fleet-ATTK01']);
      assert.deepEqual(iot.principalsOf('fleet-VICT01'), [victimArn], 'the victim thing holds no other certificate');
      assert.equal(iot.thing('fleet-VICT01')?.attributes?.serial, 'VICT01');
    });

    it('keeps the claim rules: allow-list, closed window and revoked claim refused on the rejected topic with nothing issued', async () => {
      // Without pre-authentication here: with it, a revoked claim's certificate is refused at CONNECT already.
      data.configure({ clientCertificateCheck: undefined });
      try {
        const listed = await createClaim({});
        const upload = await t.http().put(`/v1/claims/${listed.id}/allowlist`).set(bearer(t.adminKey)).set('Content-Type', 'application/json').send(JSON.stringify(['AL0001']));
        assert.ok([200, 201].includes(upload.status), upload.text);
        const off = await createCertificateFromCsr(listed, deviceKeyAndCsr('AL0002').csrPem);
        assert.equal(off.answer.topic, `${CREATE}/rejected`);
        assert.match(String(off.answer.body.errorMessage), /SERIAL_NOT_ALLOWED/);
        off.client.end(true);
        const on = await createCertificateFromCsr(listed, deviceKeyAndCsr('AL0001').csrPem);
        assert.equal(on.answer.topic, `${CREATE}/accepted`, JSON.stringify(on.answer.body));
        on.client.end(true);
        assert.equal(await certificateCount(listed.id), 1);

        // Closed window: the service's clock moves past the claim's notAfter (AWS still lets the claim certificate in).
        const closing = await createClaim({ notAfter: new Date(Date.now() + 3_600_000).toISOString() });
        clock.advance(2 * 3_600_000);
        try {
          const late = await createCertificateFromCsr(closing, deviceKeyAndCsr('WIN001').csrPem);
          assert.equal(late.answer.topic, `${CREATE}/rejected`);
          assert.match(String(late.answer.body.errorMessage), /CLAIM_EXPIRED|CLAIM_CERTIFICATE_EXPIRED/);
          late.client.end(true);
        } finally {
          clock.advance(-2 * 3_600_000);
        }
        assert.equal(await certificateCount(closing.id), 0);

        const revoked = await createClaim({});
        await admin(`/v1/claims/${revoked.id}/revoke`, { reason: 'cessationOfOperation' }, 200);
        const refused = await createCertificateFromCsr(revoked, deviceKeyAndCsr('REV001').csrPem);
        assert.equal(refused.answer.topic, `${CREATE}/rejected`);
        assert.match(String(refused.answer.body.errorMessage), /CLAIM_REVOKED/);
        refused.client.end(true);
        assert.equal(await certificateCount(revoked.id), 0);
        const none = await t.http().get('/v1/certificates').query({ thingName: 'fleet-REV001' }).set(bearer(t.adminKey));
        assert.equal(none.body.items.length, 0);
      } finally {
        data.configure({ clientCertificateCheck: preAuth.handler });
      }
    });

    it('gives exactly 10 certificates to 50 devices provisioning at once on a 10-device claim', async () => {
      const claim = await createClaim({ maxDevices: 10 });
      const devices = Array.from({ length: 50 }, (_, i) => ({ serial: `RUSH${String(i).padStart(3, '0')}`, ...deviceKeyAndCsr(`RUSH${String(i).padStart(3, '0')}`) }));
      const answers = await Promise.all(devices.map(async (d) => {
        const { client, answer } = await createCertificateFromCsr(claim, d.csrPem);
        client.end(true);
        return answer;
      }));
      const accepted = answers.filter((a) => a.topic.endsWith('/accepted'));
      const rejected = answers.filter((a) => a.topic.endsWith('/rejected'));
      assert.equal(accepted.length, 10, JSON.stringify(rejected.slice(0, 3).map((a) => a.body)));
      assert.equal(rejected.length, 40);
      for (const r of rejected) assert.match(String(r.body.errorMessage), /CLAIM_QUOTA_EXHAUSTED/);
      assert.equal(new Set(accepted.map((a) => a.body.certificateId)).size, 10);
      assert.equal(await certificateCount(claim.id), 10);
      const issued = await t.http().get('/v1/certificates').query({ claimId: claim.id, limit: 100 }).set(bearer(t.adminKey));
      assert.equal(issued.body.items.length, 10);
    });

    it('answers a retried request (same claim, same CSR) with the same certificate', async () => {
      const claim = await createClaim({});
      const { csrPem } = deviceKeyAndCsr('RETRY01');
      const first = await createCertificateFromCsr(claim, csrPem);
      assert.equal(first.answer.topic, `${CREATE}/accepted`);
      const again = await request(first.client, CREATE, { certificateSigningRequest: csrPem });
      assert.equal(again.topic, `${CREATE}/accepted`);
      assert.equal(again.body.certificateId, first.answer.body.certificateId);
      assert.equal(again.body.certificatePem, first.answer.body.certificatePem);
      first.client.end(true);
      assert.equal(await certificateCount(claim.id), 1);
      assert.ok(lambdaLog.some((line) => line.includes('retry of the same claim and CSR')));

      // Once that certificate is revoked, the same request again is refused: a revoked certificate never reaches AWS
      // IoT again (AWS would create it from the answer).
      await admin(`/v1/certificates/${(await t.http().get('/v1/certificates').query({ thingName: 'fleet-RETRY01' }).set(bearer(t.adminKey))).body.items[0].id}/revoke`, { reason: 'keyCompromise' }, 200);
      const refused = await t.http().post('/v1/provisioning/aws-certificate-provider').set(bearer(integrationKey))
        .send({ certificateSigningRequest: csrPem, principalId: String(new X509Certificate(claim.certificatePem).fingerprint256).replace(/:/g, '').toLowerCase(), clientId: 'retry-after-revoke' });
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.body.code, 'REPLAY_CERTIFICATE_REVOKED');
      assert.match(refused.headers['content-type'], /application\/problem\+json/);
      data.configure({ clientCertificateCheck: undefined });
      try {
        const again2 = await createCertificateFromCsr(claim, csrPem);
        assert.equal(again2.answer.topic, `${CREATE}/rejected`);
        assert.match(String(again2.answer.body.errorMessage), /REPLAY_CERTIFICATE_REVOKED/);
        again2.client.end(true);
      } finally {
        data.configure({ clientCertificateCheck: preAuth.handler });
      }
      assert.equal(await certificateCount(claim.id), 1);
    });

    it('refuses the next CONNECT of a revoked device within the cache bound, keeps others connecting, and fails closed without Fleet PKI', async () => {
      const claim = await createClaim({});
      const provisionDevice = async (serial: string) => {
        const { keyPem, csrPem } = opensslDevice(serial);
        const { client, answer } = await createCertificateFromCsr(claim, csrPem);
        assert.equal(answer.topic, `${CREATE}/accepted`);
        const done = await request(client, REGISTER, { certificateOwnershipToken: answer.body.certificateOwnershipToken, parameters: { SerialNumber: serial } });
        assert.equal(done.topic, `${REGISTER}/accepted`);
        client.end(true);
        return { keyPem, certificatePem: String(answer.body.certificatePem), certificateId: String(answer.body.certificateId) };
      };
      const doomed = await provisionDevice('REVK01');
      const keeper = await provisionDevice('KEEP01');
      const connects = async (d: { keyPem: string; certificatePem: string }) => {
        try {
          (await connect(`c-${randomUUID()}`, d.keyPem, d.certificatePem)).end(true);
          return true;
        } catch {
          return false;
        }
      };
      assert.equal(await connects(doomed), true, 'connects before revocation (and fills the cache)');
      assert.equal(await connects(keeper), true);
      const [record] = (await t.http().get('/v1/certificates').query({ thingName: 'fleet-REVK01' }).set(bearer(t.adminKey))).body.items;
      const revokedAt = Date.now();
      await admin(`/v1/certificates/${record.id}/revoke`, { reason: 'keyCompromise' }, 200);
      // Each attempt is a fresh CONNECT, as a device retrying would make; the bound is STATUS_CACHE_SECONDS + one call.
      let refusedAfterMs = -1;
      while (Date.now() - revokedAt < 10_000) {
        if (!(await connects(doomed))) {
          refusedAfterMs = Date.now() - revokedAt;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(refusedAfterMs >= 0, 'the revoked device was still connecting 10 s after revocation');
      // STATUS_CACHE_SECONDS (2 s) + one status call; the slack is for a loaded CI machine.
      assert.ok(refusedAfterMs <= 2000 + 2500, `refused after ${refusedAfterMs} ms: over STATUS_CACHE_SECONDS (2 s) + one status call`);
      // Two paths refuse it now: pre-authentication (once its cached answer expires) and AWS IoT's own status, which the
      // outbox sets REVOKED (checked below) — whichever comes first.
      const refusal = data.connections.filter((c) => c.certificateId === doomed.certificateId).at(-1)!;
      assert.ok(['pre-authentication', 'the certificate is REVOKED'].includes(String(refusal.reason)), String(refusal.reason));
      console.log(`# revocation -> refused CONNECT after ${refusedAfterMs} ms (STATUS_CACHE_SECONDS=2; by ${refusal.reason})`);
      // The pre-authentication bound on its own (the custom domain, where AWS's status change may lag by minutes).
      let preAuthRefusedAfterMs = -1;
      while (Date.now() - revokedAt < 10_000) {
        if (!(await preAuth.handler({ clientCertificateChain: [doomed.certificatePem] })).isAuthenticated) {
          preAuthRefusedAfterMs = Date.now() - revokedAt;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(preAuthRefusedAfterMs >= 0 && preAuthRefusedAfterMs <= 2000 + 2500, `pre-authentication refused after ${preAuthRefusedAfterMs} ms`);
      console.log(`# revocation -> pre-authentication refuses after ${preAuthRefusedAfterMs} ms (STATUS_CACHE_SECONDS=2)`);
      assert.equal(await connects(keeper), true, 'an unrevoked device still connects');
      // AWS IoT's own path as well: the device CA has no AWS registration here, yet the certificate AWS created from the
      // provider's answer is set REVOKED through the outbox (UpdateCertificate by its AWS id = our fingerprint), so the
      // account's default endpoint (no pre-authentication there) refuses it too.
      assert.equal(record.iot.status, 'aws-created', 'marked as held by AWS IoT');
      let awsStatus: string | undefined;
      for (const until = Date.now() + 15_000; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 100))) {
        awsStatus = iot.certificate(doomed.certificateId)?.status;
        if (awsStatus === 'REVOKED') break;
      }
      assert.equal(awsStatus, 'REVOKED', 'the revocation reached AWS IoT');
      assert.equal(iot.certificate(keeper.certificateId)?.status, 'ACTIVE');
      let ourIotStatus: string | undefined;
      for (const until = Date.now() + 5_000; Date.now() < until; await new Promise((resolve) => setTimeout(resolve, 100))) {
        ourIotStatus = (await t.http().get(`/v1/certificates/${record.id}`).set(bearer(t.adminKey))).body.iot.status;
        if (ourIotStatus === 'revoked') break;
      }
      assert.equal(ourIotStatus, 'revoked', 'our record says AWS IoT holds it REVOKED');

      // Fleet PKI unreachable: a closed port; once the cached answer has expired the handler fails closed and says so.
      process.env.FLEET_PKI_URL = 'http://127.0.0.1:9';
      try {
        preAuth.clearStatusCache();
        const before = lambdaLog.length;
        assert.equal(await connects(keeper), false, 'fails closed');
        const lines = lambdaLog.slice(before).map((line) => JSON.parse(line) as Record<string, unknown>);
        assert.ok(lines.some((l) => l.handler === 'client-certificate-check' && /^fail closed: Fleet PKI unavailable after 3 attempt/.test(String(l.message))), JSON.stringify(lines));
      } finally {
        process.env.FLEET_PKI_URL = t.baseUrl;
      }
      assert.equal(await connects(keeper), true, 'connects again once Fleet PKI answers');
    });

    it('reads the API key from an SSM SecureString parameter as well, once per cache period', async () => {
      delete process.env.FLEET_PKI_API_KEY_SECRET_ID;
      process.env.FLEET_PKI_API_KEY_PARAMETER = '/fleet-pki/aws-integration-key';
      forgetApiKey();
      try {
        const claim = await createClaim({});
        for (const serial of ['SSM001', 'SSM002']) {
          const { client, answer } = await createCertificateFromCsr(claim, deviceKeyAndCsr(serial).csrPem);
          assert.equal(answer.topic, `${CREATE}/accepted`, JSON.stringify(answer.body));
          client.end(true);
        }
        assert.equal(secrets.reads.get('/fleet-pki/aws-integration-key'), 1);
      } finally {
        delete process.env.FLEET_PKI_API_KEY_PARAMETER;
        process.env.FLEET_PKI_API_KEY_SECRET_ID = secretArn;
        forgetApiKey();
      }
    });

    it('refuses what is not a claim of ours and fails closed on anything doubtful, with no certificate issued', async () => {
      const count = async () => (await t.http().get('/v1/certificates').query({ limit: 500 }).set(bearer(t.adminKey))).body.items.length as number;
      const before = await count();
      await assert.rejects(provider.handler({} as never), /INVALID_EVENT/);
      const { csrPem } = deviceKeyAndCsr('NOCLAIM1');
      // A device certificate of ours as the principal, then an id nobody issued.
      const device = await admin('/v1/certificates', { authorityId: deviceCa.id, csr: deviceKeyAndCsr('plain-1').csrPem, profile: 'device', thingName: 'plain-1' });
      await assert.rejects(provider.handler({ certificateSigningRequest: csrPem, principalId: device.fingerprint, clientId: 'x' }), /AWS_PRINCIPAL_NOT_A_CLAIM/);
      await assert.rejects(provider.handler({ certificateSigningRequest: csrPem, principalId: 'ab'.repeat(32), clientId: 'x' }), /AWS_PRINCIPAL_NOT_A_CLAIM/);
      assert.equal(await count(), before + 1, 'only the plain issuance above');
      const issuedHere = 3; // the plain device certificate, the server certificate and the one under the disabled CA

      preAuth.clearStatusCache();
      assert.deepEqual(await preAuth.handler({}), { isAuthenticated: false });
      assert.deepEqual(await preAuth.handler({ clientCertificateChain: ['not a certificate'] }), { isAuthenticated: false });
      const der = Buffer.from(device.certificatePem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').toString('base64');
      assert.deepEqual(await preAuth.handler({ principalId: 'cd'.repeat(32), clientCertificateChain: [der] }), { isAuthenticated: false }, 'principal is not the leaf');
      assert.deepEqual(await preAuth.handler({ principalId: device.fingerprint, clientCertificateChain: [der] }), { isAuthenticated: true }, 'base64 DER leaf');
      assert.deepEqual(await preAuth.handler({ clientCertificateChain: [device.certificatePem] }), { isAuthenticated: true }, 'PEM leaf');
      // Only client certificates (device, claim profiles) of usable authorities: a server certificate of ours is refused,
      // and so is a device certificate once its issuing CA is disabled.
      const server = await admin('/v1/certificates', { authorityId: deviceCa.id, csr: buildCsr({ dnsNames: ['pki-status.example.com'] }), profile: 'server' });
      assert.deepEqual(await preAuth.handler({ clientCertificateChain: [server.certificatePem] }), { isAuthenticated: false }, 'a server certificate is no client');
      const doomedCa = await admin('/v1/authorities', { name: `Doomed ${randomUUID().slice(0, 8)}`, type: 'intermediate', parentId: root.id, subject: { commonName: 'Doomed Devices CA' } });
      const underDoomed = await admin('/v1/certificates', { authorityId: doomedCa.id, csr: deviceKeyAndCsr('doomed-1').csrPem, profile: 'device', thingName: 'doomed-1' });
      assert.deepEqual(await preAuth.handler({ clientCertificateChain: [underDoomed.certificatePem] }), { isAuthenticated: true });
      await admin(`/v1/authorities/${doomedCa.id}/disable`, {}, 200);
      preAuth.clearStatusCache();
      assert.deepEqual(await preAuth.handler({ clientCertificateChain: [underDoomed.certificatePem] }), { isAuthenticated: false }, 'its issuing CA is disabled');
      // A key of another role is refused by the service (403): the handler fails closed.
      const operatorKey = (await admin('/v1/api-keys', { name: 'not for lambdas', role: 'operator' })).key;
      recordSecret('operator api key', operatorKey);
      const wrongArn = secrets.putSecret('fleet-pki/wrong-role', operatorKey);
      process.env.FLEET_PKI_API_KEY_SECRET_ID = wrongArn;
      forgetApiKey();
      preAuth.clearStatusCache();
      try {
        assert.deepEqual(await preAuth.handler({ clientCertificateChain: [device.certificatePem] }), { isAuthenticated: false });
        assert.ok(lambdaLog.some((line) => line.includes('fail closed: Fleet PKI answered 403')));
        await assert.rejects(provider.handler({ certificateSigningRequest: csrPem, principalId: device.fingerprint, clientId: 'x' }), /FORBIDDEN/);
      } finally {
        process.env.FLEET_PKI_API_KEY_SECRET_ID = secretArn;
        forgetApiKey();
        preAuth.clearStatusCache();
      }
      assert.equal(await count(), before + issuedHere);
    });

    it('queues no RegisterCertificate for a certificate AWS IoT creates itself, even under an api-mode CA registration', async () => {
      const apiCa = await admin('/v1/authorities', { name: `API Devices ${randomUUID().slice(0, 8)}`, type: 'intermediate', parentId: root.id, subject: { commonName: 'API Devices CA' } });
      await admin(`/v1/authorities/${apiCa.id}/iot-registration`, { certificateMode: 'SNI_ONLY', setAsActive: true, deviceRegistration: 'api' });
      const claim = await createClaim({ deviceAuthorityId: apiCa.id });
      const registers = () => (iot.calls.get('RegisterCertificate') ?? 0) + (iot.calls.get('RegisterCertificateWithoutCA') ?? 0);
      const registersBefore = registers();
      const { client, answer } = await createCertificateFromCsr(claim, opensslDevice('APIM01').csrPem);
      assert.equal(answer.topic, `${CREATE}/accepted`, JSON.stringify(answer.body));
      client.end(true);
      const [record] = (await t.http().get('/v1/certificates').query({ thingName: 'fleet-APIM01' }).set(bearer(t.adminKey))).body.items;
      assert.equal(record.iot.status, 'aws-created');
      // A plain issuance under the same CA is registered by us (the outbox), which shows the outbox is running.
      const plain = await admin('/v1/certificates', { authorityId: apiCa.id, csr: deviceKeyAndCsr('api-plain-1').csrPem, profile: 'device', thingName: 'api-plain-1' });
      for (const until = Date.now() + 15_000; Date.now() < until && !iot.certificate(plain.fingerprint); ) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(iot.certificate(plain.fingerprint), 'the plain certificate was registered');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(registers(), registersBefore + 1, 'one registration: the plain one, none for the provider-issued one');
      assert.equal(iot.certificate(String(answer.body.certificateId))?.status, 'PENDING_ACTIVATION', 'AWS holds it as it created it');
    });

    it('plays JITR from a real TLS connection: an unknown certificate under a registered CA is registered and its event published', async () => {
      data.configure({ clientCertificateCheck: undefined });
      try {
        const registration = await admin(`/v1/authorities/${deviceCa.id}/iot-registration`, { certificateMode: 'SNI_ONLY', autoRegistration: true, setAsActive: true, deviceRegistration: 'jitr' });
        assert.ok(registration.caCertificateId);
        const { csrPem, privateKey } = deviceKeyAndCsr('jitr-device-1');
        const issued = await admin('/v1/certificates', { authorityId: deviceCa.id, csr: csrPem, profile: 'device', thingName: 'jitr-device-1' });
        const events: unknown[] = [];
        iot.onEvent = (_topic, event) => events.push(event);
        const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
        await assert.rejects(connect('jitr-device-1', keyPem, issued.certificatePem + deviceCa.certificatePem));
        assert.equal(events.length, 1);
        assert.equal((events[0] as { certificateId: string }).certificateId, issued.fingerprint);
        assert.equal(iot.certificate(issued.fingerprint)?.status, 'PENDING_ACTIVATION');
        // The event goes where the topic rule would post it: the service activates the certificate.
        const answered = await t.http().post('/v1/iot/events').set('x-fleet-pki-events-secret', eventsSecret).send(events[0] as object);
        assert.equal(answered.status, 200, answered.text);
        assert.equal(answered.body.decision, 'activate');
        assert.equal(answered.body.certificateId, issued.id);
      } finally {
        iot.onEvent = undefined;
        data.configure({ clientCertificateCheck: preAuth.handler });
      }
    });
  });
}

/**
 * The Lambdas' shared client on its own (no service): secrets never in messages, one deadline per invocation, https
 * only (loopback aside), a bounded answer. Fleet PKI is played by a local HTTP server that answers late or too much.
 */
describe('AWS Lambda client: secrets kept out of messages, one deadline per invocation, bounded answers', () => {
  let secrets: SecretsStandIn;
  let server: http.Server;
  let port = 0;
  let mode: 'slow' | 'huge' | 'ok' = 'slow';
  const lines: string[] = [];
  let previousWriter: (line: string) => void;
  const savedEnv = { ...process.env };
  // A chain entry the handler reads as a DER certificate (a SEQUENCE); the status call is what is under test.
  const leaf = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256, 7)]).toString('base64');
  const csr = deviceKeyAndCsr('LAMBDA01').csrPem;

  before(async () => {
    secrets = await new SecretsStandIn().start();
    server = http.createServer((req, res) => {
      req.resume();
      if (mode === 'ok') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ authenticated: true, known: true, status: 'active' }));
        return;
      }
      if (mode === 'huge') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ authenticated: true, padding: 'x'.repeat(100 * 1024) }));
        return;
      }
      const timer = setTimeout(() => res.end('{}'), 10_000);
      res.on('close', () => clearTimeout(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    previousWriter = setLogWriter((line) => lines.push(line));
  });

  after(async () => {
    setLogWriter(previousWriter);
    for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
    Object.assign(process.env, savedEnv);
    forgetApiKey();
    preAuth.clearStatusCache();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await secrets?.stop();
  });

  function useSecret(value: string): void {
    Object.assign(process.env, {
      FLEET_PKI_URL: `http://127.0.0.1:${port}`,
      FLEET_PKI_API_KEY_SECRET_ID: secrets.putSecret(`fleet-pki/${randomUUID()}`, value),
      FLEET_PKI_TIMEOUT_MS: '3000',
      FLEET_PKI_RETRIES: '2',
      STATUS_CACHE_SECONDS: '0',
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'AKIDSTANDIN',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'standin',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
    });
    delete process.env.FLEET_PKI_API_KEY_PARAMETER;
    forgetApiKey();
    preAuth.clearStatusCache();
  }

  it('never puts a malformed secret, or any part of it, in a log line or an error', async () => {
    const marker = `fpk_live_SE${randomUUID().replace(/-/g, '')}`;
    recordSecret('malformed secret key', marker);
    // Broken JSON around the key: JSON.parse's message would quote the text next to the error.
    useSecret(`{"apiKey": "${marker}" "name": "x"`);
    const before = lines.length;
    assert.deepEqual(await preAuth.handler({ clientCertificateChain: [leaf] }), { isAuthenticated: false });
    const thrown = await provider.handler({ certificateSigningRequest: csr, principalId: 'ab'.repeat(32), clientId: 'x' }).then(() => undefined, (err: Error) => err);
    assert.ok(thrown, 'the provider invocation fails');
    const written = lines.slice(before);
    assert.ok(written.some((l) => l.includes('fail closed') && l.includes('not valid JSON')), written.join('\n'));
    for (const text of [...written, thrown.message, String(thrown.stack)]) {
      assert.ok(!text.includes(marker.slice(0, 12)) && !text.includes(marker.slice(-12)), `the key leaked: ${text}`);
    }
  });

  it('fails closed within the invocation deadline when Fleet PKI is slow, and says so in the log', async () => {
    mode = 'slow';
    useSecret('fpk_test_deadline_key');
    recordSecret('deadline test key', 'fpk_test_deadline_key');
    const before = lines.length;
    const started = Date.now();
    // 1.5 s left in the Lambda: the deadline is that minus the 500 ms margin, far below 3 × 3000 ms of attempts.
    const answer = await preAuth.handler({ clientCertificateChain: [leaf] }, { getRemainingTimeInMillis: () => 1500 });
    const took = Date.now() - started;
    assert.deepEqual(answer, { isAuthenticated: false });
    assert.ok(took < 1500, `answered after ${took} ms: past the Lambda's remaining time`);
    assert.ok(took >= 900, `answered after ${took} ms: before the deadline, so the slow call was not waited for`);
    const logged = lines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(logged.some((l) => /^fail closed: Fleet PKI unavailable after 1 attempt\(s\) \(invocation deadline reached\)/.test(String(l.message))), JSON.stringify(logged));
    console.log(`# slow Fleet PKI, 1500 ms remaining -> fail closed after ${took} ms`);
  });

  it('refuses http:// to anything but loopback, and an answer over 64 KiB', async () => {
    useSecret('fpk_test_deadline_key');
    process.env.FLEET_PKI_URL = 'http://pki.example.com';
    let before = lines.length;
    assert.deepEqual(await preAuth.handler({ clientCertificateChain: [leaf] }), { isAuthenticated: false });
    assert.ok(lines.slice(before).some((l) => l.includes('fail closed: FLEET_PKI_URL must be https')), lines.slice(before).join('\n'));
    await assert.rejects(provider.handler({ certificateSigningRequest: csr, principalId: 'ab'.repeat(32), clientId: 'x' }), /FLEET_PKI_URL must be https/);

    mode = 'huge';
    process.env.FLEET_PKI_URL = `http://127.0.0.1:${port}`;
    process.env.FLEET_PKI_RETRIES = '0';
    before = lines.length;
    assert.deepEqual(await preAuth.handler({ clientCertificateChain: [leaf] }), { isAuthenticated: false });
    assert.ok(lines.slice(before).some((l) => l.includes('over 65536 bytes')), lines.slice(before).join('\n'));
  });

  it('keeps at most STATUS_CACHE_ENTRIES answers, evicting the oldest one (not the whole cache)', async () => {
    mode = 'ok';
    useSecret('fpk_test_deadline_key');
    process.env.STATUS_CACHE_SECONDS = '60';
    process.env.STATUS_CACHE_ENTRIES = '2';
    const leaves = [1, 2, 3].map((n) => Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256, n)]));
    const ids = leaves.map((der) => createHash('sha256').update(der).digest('hex'));
    for (const der of leaves) assert.deepEqual(await preAuth.handler({ clientCertificateChain: [der.toString('base64')] }), { isAuthenticated: true });
    const view = preAuth.statusCacheView();
    assert.equal(view.size, 2);
    assert.equal(view.has(ids[0]), false, 'the oldest answer went');
    assert.ok(view.has(ids[1]) && view.has(ids[2]), 'the newer ones stay');
  });
});
