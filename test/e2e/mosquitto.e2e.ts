import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { Broker, mosquittoSkip, startMosquitto } from '../support/mosquitto';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, stationToken, StationCredentials } from '../support/station';
import { bearer, binaryBody, startTestApp, TestApp } from '../support/test-app';

/**
 * Our certificates against a real MQTT broker: a device certificate from the claim exchange connects to
 * Mosquitto over mutual TLS and publishes; once its claim is revoked with cascade and the broker has our new
 * CRL, the same certificate is refused, while a device from another claim still gets in.
 */
describe('device certificates on a real Mosquitto broker', { skip: mosquittoSkip() }, () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  let broker: Broker | undefined;
  let deviceCaId: string;
  let revokedClaimId: string;
  let doomed: Device;
  let control: Device;

  interface Device {
    thingName: string;
    serial: string;
    certPem: string;
    keyPem: string;
  }

  before(async () => {
    t = await startTestApp('sqlite');
    const root = await admin('post', '/v1/authorities', { name: 'MQTT Root', type: 'root', subject: { commonName: 'MQTT Root' } });
    const claimCa = await admin('post', '/v1/authorities', { name: 'MQTT Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'MQTT Claims CA' } });
    const deviceCa = await admin('post', '/v1/authorities', { name: 'MQTT Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'MQTT Devices CA' } });
    deviceCaId = deviceCa.id;

    const first = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, thingNameTemplate: 'mqtt-{serial}' });
    const second = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, thingNameTemplate: 'mqtt-{serial}' });
    revokedClaimId = first.claim.id;
    doomed = await provision(first.station, 'SN-DOOMED');
    control = await provision(second.station, 'SN-CONTROL');

    // The broker's own certificate, issued by us (server profile) from the device CA. The profile takes only
    // fully qualified host names, so CN=localhost is dropped (a DNS:localhost SAN would be refused): the
    // certificate names IP 127.0.0.1, which mosquitto_pub checks as it connects to 127.0.0.1.
    const serverCsr = ssl.newCsr('ec:P-256', '/CN=localhost', ['-addext', 'subjectAltName=IP:127.0.0.1']);
    const server = await admin('post', '/v1/certificates', { authorityId: deviceCa.id, profile: 'server', csr: serverCsr.csrPem });
    assert.equal(server.subject, 'CN=127.0.0.1');

    broker = await startMosquitto({
      // chainPem = device CA + root: mosquitto needs the self-signed root in cafile. It also lets
      // mosquitto_pub verify the broker, whose certificate comes from the same CA.
      caPem: deviceCa.chainPem,
      serverCertPem: server.certificatePem + server.chainPem,
      serverKeyPem: fs.readFileSync(serverCsr.keyFile, 'utf8'),
      crlPem: await deviceCrlPem(),
    });
  });
  after(async () => {
    await broker?.stop();
    await t?.close();
    ssl.cleanup();
  });

  it('lets a device certificate from the claim exchange connect over mutual TLS and publish at QoS 1', async () => {
    const result = await publish(doomed);
    assert.ok(result.ok, `${result.output}\n${result.brokerLog}`);
    // use_identity_as_username: the broker took the certificate's CN, our thing name, as the username.
    assert.match(result.brokerLog, new RegExp(`New client connected .* u'${doomed.thingName}'`));
    assert.match(result.brokerLog, /Received PUBLISH from \S+ \(d0, q1,/);
  });

  it('refuses the device once its claim is revoked with cascade and the broker has the new CRL; another claim’s device still publishes', async () => {
    const revoked = await admin('post', `/v1/claims/${revokedClaimId}/revoke`, { reason: 'keyCompromise', cascade: true });
    assert.equal(revoked.revokedDeviceCertificates, 1);
    const crlPem = await deviceCrlPem();
    const crlText = ssl.run(['crl', '-in', ssl.file('new-crl.pem', crlPem), '-noout', '-text']).output;
    assert.match(crlText, new RegExp(`Serial Number: ${doomed.serial.toUpperCase()}`));
    assert.doesNotMatch(crlText, new RegExp(`Serial Number: ${control.serial.toUpperCase()}`));

    await broker!.restart({ crlPem });
    const refused = await publish(doomed);
    assert.equal(refused.ok, false, `a revoked certificate published:\n${refused.output}`);
    assert.match(refused.brokerLog, /certificate verify failed/);
    assert.doesNotMatch(refused.brokerLog, /New client connected/);

    const allowed = await publish(control);
    assert.ok(allowed.ok, `${allowed.output}\n${allowed.brokerLog}`);
    assert.match(allowed.brokerLog, new RegExp(`New client connected .* u'${control.thingName}'`));
  });

  async function admin(method: 'post' | 'get', path: string, body?: object): Promise<Response['body']> {
    const req = t.http()[method](path).set(bearer(t.adminKey));
    const res = await (body === undefined ? req : req.send(body));
    assert.ok(res.status === 200 || res.status === 201, `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  /** A device key and CSR from openssl, exchanged for a device certificate with the claim's JWT. */
  async function provision(station: StationCredentials, deviceSerial: string): Promise<Device> {
    const csr = ssl.newCsr('ec:P-256', `/CN=${deviceSerial}`);
    const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial, csr: csr.csrPem });
    assert.equal(res.status, 201, res.text);
    return { thingName: res.body.thingName, serial: res.body.serial, certPem: res.body.certificatePem, keyPem: fs.readFileSync(csr.keyFile, 'utf8') };
  }

  /** The device CA's current CRL (served as DER) converted to PEM for mosquitto's crlfile. */
  async function deviceCrlPem(): Promise<string> {
    const res = await t.http().get(`/v1/authorities/${deviceCaId}/crl`).buffer(true).parse(binaryBody);
    assert.equal(res.status, 200);
    const converted = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file(`crl-${Date.now()}.der`, res.body as Buffer)]);
    assert.equal(converted.status, 0, converted.output);
    return converted.output;
  }

  function publish(device: Device) {
    return broker!.publish({ certPem: device.certPem, keyPem: device.keyPem, topic: `fleet/${device.thingName}/telemetry`, message: '{"t":21.5}' });
  }
});
