import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { DEFAULT_POLICY_TEMPLATE } from '../../src/iot/policy-lint';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { IotStandIn } from '../../tools/standins';
import { createClaim, stationToken } from '../support/station';
import { bearer, ManualClock, startTestApp, TestApp } from '../support/test-app';
import { eventually } from '../support/eventually';

type Body = Response['body'];
const DAY = 86_400_000;


const WIDE_OPEN = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] };

/**
 * Least-privilege AWS IoT policies (managed templates, linted) and fleet audits (drift, unknown certificates,
 * expiry), against the IoT stand-in through the real SDK.
 */
describe('AWS IoT policy templates and fleet audits', () => {
  const clock = new ManualClock();
  let iot: IotStandIn;
  let t: TestApp;
  let operatorKey: string;
  let root: Body;
  let apiCa: Body;

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', { iot, clock, env: { OUTBOX_POLL_MS: '25', OUTBOX_BACKOFF_BASE_MS: '20', OUTBOX_BACKOFF_MAX_MS: '200', IOT_MAX_ATTEMPTS: '1' } });
    operatorKey = (await call('post', '/v1/api-keys', { name: 'fleet operator', role: 'operator' })).key;
    root = await call('post', '/v1/authorities', { name: 'Fleet Root', type: 'root', subject: { commonName: 'Fleet Root' } });
    apiCa = await call('post', '/v1/authorities', { name: 'Fleet Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Fleet Devices' } });
    await eventually('the default template is in AWS IoT', () => iot.policy('fleet-default') !== undefined);
    await call('post', `/v1/authorities/${apiCa.id}/iot-registration`, { deviceRegistration: 'api', policyTemplate: 'fleet-default' });
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
  });

  async function call(method: 'get' | 'post', path: string, body?: object, expected?: number, key = t.adminKey): Promise<Body> {
    const req = t.http()[method](path).set(bearer(key));
    const res = await (body ? req.send(body) : req);
    assert.equal(res.status, expected ?? (method === 'get' ? 200 : 201), `${method} ${path}: ${res.text}`);
    return res.body;
  }

  async function finishedAudit(body: object = {}): Promise<Body> {
    const started = await call('post', '/v1/fleet/audits', body, 202);
    let audit: Body = started;
    await eventually('the audit finished', async () => (audit = await call('get', `/v1/fleet/audits/${started.id}?limit=500`)).status !== 'running');
    assert.equal(audit.status, 'done', JSON.stringify(audit.summary));
    return audit;
  }

  describe('policy templates', () => {
    it('ships the thing-scoped default template, clean under lint, synced to AWS IoT', async () => {
      const template = await call('get', '/v1/iot/policies/fleet-default');
      assert.equal(template.version, 1);
      assert.deepEqual(template.acceptedFindings, []);
      assert.match(JSON.stringify(template.document), /\$\{iot:Connection\.Thing\.ThingName\}/);
      assert.deepEqual(iot.policy('fleet-default')?.document, JSON.parse(JSON.stringify(DEFAULT_POLICY_TEMPLATE.document)));
      await eventually('the template shows synced', async () => (await call('get', '/v1/iot/policies/fleet-default')).iotStatus === 'synced');
    });

    it('refuses a wide-open policy naming each finding; an operator may not accept findings (audited); an admin may', async () => {
      const refused = await t.http().post('/v1/iot/policies').set(bearer(operatorKey)).send({ name: 'wide-open', document: WIDE_OPEN });
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.body.code, 'POLICY_FINDINGS');
      const codes = refused.body.findings.map((f: Body) => f.code);
      assert.ok(codes.includes('WILDCARD_ACTION'), codes.join());
      assert.ok(codes.includes('WILDCARD_RESOURCE'), codes.join());

      const byOperator = await t.http().post('/v1/iot/policies').set(bearer(operatorKey)).send({ name: 'wide-open', document: WIDE_OPEN, acceptFindings: codes });
      assert.equal(byOperator.status, 403);
      const denied = await call('get', '/v1/audit?action=iot.policy-findings-accept-denied');
      assert.equal(denied.items[0].actor.role, 'operator');

      const byAdmin = await call('post', '/v1/iot/policies', { name: 'wide-open', document: WIDE_OPEN, acceptFindings: codes });
      assert.deepEqual(byAdmin.acceptedFindings, [...new Set<string>(codes)].sort());
      const saved = await call('get', '/v1/audit?action=iot.policy-saved&targetId=wide-open');
      assert.deepEqual(saved.items[0].details.acceptedFindings, byAdmin.acceptedFindings);
      await eventually('the accepted policy reached AWS IoT', () => iot.policy('wide-open') !== undefined);
    });

    it('keeps at most five versions in AWS IoT, the newest as default', async () => {
      for (let i = 0; i < 6; i++) {
        const document = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}', Sid: `v${i}` }] };
        const saved = await call('post', '/v1/iot/policies', { name: 'versioned', document });
        assert.equal(saved.version, i + 1);
        await eventually(`version ${i + 1} is the default in AWS IoT`, () => JSON.stringify(iot.policy('versioned')?.document ?? {}).includes(`"v${i}"`));
      }
      assert.ok((iot.policy('versioned')?.versions.length ?? 0) <= 5);
    });
  });

  it('provisions a device through a claim on the default template: its AWS IoT policy is the thing-scoped document', async () => {
    const claims = await call('post', '/v1/authorities', { name: 'Fleet Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Fleet Claims' } });
    const { station } = await createClaim(t, { claimAuthorityId: claims.id, deviceAuthorityId: apiCa.id, iot: { policyTemplate: 'fleet-default' }, notAfter: new Date(clock.now().getTime() + 7 * DAY).toISOString() });
    const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: 'POL1', csr: deviceKeyAndCsr('POL1').csrPem });
    assert.equal(res.status, 201, res.text);
    await eventually('the device is ACTIVE in AWS IoT', () => iot.certificate(res.body.certificateId)?.status === 'ACTIVE');
    const attached = iot.policiesAttachedTo(iot.certificateArn(res.body.certificateId));
    assert.deepEqual(attached, ['fleet-default']);
    const document = JSON.stringify(iot.policy('fleet-default')?.document);
    assert.match(document, /client\/\$\{iot:Connection\.Thing\.ThingName\}/);
    assert.match(document, /dt\/\$\{iot:Connection\.Thing\.ThingName\}\/\*/);
  });

  it('attaches the device profile’s template when neither the claim nor the CA registration names a policy', async () => {
    const bare = await call('post', '/v1/authorities', { name: 'Bare', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bare CA' } });
    await call('post', `/v1/authorities/${bare.id}/iot-registration`, { deviceRegistration: 'api' });
    const device = await call('post', '/v1/certificates', { authorityId: bare.id, csr: deviceKeyAndCsr('bare-1').csrPem, profile: 'device', thingName: 'bare-1' });
    await eventually('ACTIVE in AWS IoT', () => iot.certificate(device.fingerprint)?.status === 'ACTIVE');
    assert.deepEqual(iot.policiesAttachedTo(iot.certificateArn(device.fingerprint)), ['fleet-default']);
  });

  it('finds a revoked certificate set ACTIVE behind our back, remediates it, and reports a certificate we never issued', async () => {
    const device = await call('post', '/v1/certificates', { authorityId: apiCa.id, csr: deviceKeyAndCsr('drift-1').csrPem, profile: 'device', thingName: 'drift-1' });
    await eventually('ACTIVE in AWS IoT', () => iot.certificate(device.fingerprint)?.status === 'ACTIVE');
    await call('post', `/v1/certificates/${device.id}/revoke`, { reason: 'keyCompromise' }, 200);
    await eventually('REVOKED in AWS IoT', () => iot.certificate(device.fingerprint)?.status === 'REVOKED');
    iot.setCertificateStatus(device.fingerprint, 'ACTIVE');
    const foreign = await iot.registerForeignCertificate(apiCa.fingerprint);

    const audit = await finishedAudit();
    const drift = audit.findings.find((f: Body) => f.type === 'IOT_STATUS_DRIFT' && f.resourceId === device.fingerprint);
    assert.ok(drift, JSON.stringify(audit.summary));
    assert.equal(drift.severity, 'high');
    assert.equal(drift.remediation, 'push-iot-status');
    const unknown = audit.findings.find((f: Body) => f.type === 'IOT_UNKNOWN_CERTIFICATE');
    assert.equal(unknown?.resourceId, foreign.certificateId);
    const permissive = audit.findings.find((f: Body) => f.type === 'PERMISSIVE_POLICY_ATTACHED');
    assert.equal(permissive, undefined, 'devices carry only the default template');

    const remediated = await call('post', `/v1/fleet/audits/${audit.id}/findings/${drift.id}/remediate`, undefined, 200);
    assert.deepEqual(remediated.remediationResult, { awsStatus: 'REVOKED', targetId: 'default' });
    assert.equal(iot.certificate(device.fingerprint)?.status, 'REVOKED');
    const again = await t.http().post(`/v1/fleet/audits/${audit.id}/findings/${drift.id}/remediate`).set(bearer(t.adminKey));
    assert.equal(again.status, 409);
    const events = await call('get', `/v1/audit?action=fleet-audit.remediated&targetId=${drift.id}`);
    assert.equal(events.items.length, 1);
    const metrics = await t.http().get('/metrics');
    assert.match(metrics.text, /fleetpki_fleet_audit_findings\{type="IOT_STATUS_DRIFT",severity="high"\} 1/);
  });

  it('reports a permissive policy attached to our devices and a claim at its quota', async () => {
    const loose = await call('post', '/v1/authorities', { name: 'Loose', type: 'intermediate', parentId: root.id, subject: { commonName: 'Loose CA' } });
    await call('post', `/v1/authorities/${loose.id}/iot-registration`, { deviceRegistration: 'api', policyTemplate: 'wide-open' });
    const device = await call('post', '/v1/certificates', { authorityId: loose.id, csr: deviceKeyAndCsr('loose-1').csrPem, profile: 'device', thingName: 'loose-1' });
    // The fleet audit samples the devices our records say are active (written just after AWS shows ACTIVE).
    await eventually('active in AWS IoT and in our record', async () => iot.certificate(device.fingerprint)?.status === 'ACTIVE' && (await call('get', `/v1/certificates/${device.id}`)).iot.status === 'active');
    const claims = await call('post', '/v1/authorities', { name: 'Quota Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Quota Claims' } });
    const { claim, station } = await createClaim(t, { claimAuthorityId: claims.id, deviceAuthorityId: loose.id, maxDevices: 1, notAfter: new Date(clock.now().getTime() + 7 * DAY).toISOString() });
    const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${stationToken(t, station)}`).send({ deviceSerial: 'Q1', csr: deviceKeyAndCsr('Q1').csrPem });
    assert.equal(res.status, 201, res.text);

    const audit = await finishedAudit();
    const permissive = audit.findings.find((f: Body) => f.type === 'PERMISSIVE_POLICY_ATTACHED');
    assert.equal(permissive?.resourceId, 'wide-open');
    assert.equal(permissive.severity, 'high');
    assert.ok(permissive.details.findings.some((f: Body) => f.code === 'WILDCARD_ACTION'));
    const quota = audit.findings.find((f: Body) => f.type === 'CLAIM_NEAR_QUOTA' && f.resourceId === claim.id);
    assert.deepEqual({ used: quota?.details.used, maxDevices: quota?.details.maxDevices }, { used: 1, maxDevices: 1 });
    assert.ok(audit.findings.some((f: Body) => f.type === 'CLAIM_NEAR_EXPIRY' && f.resourceId === claim.id), 'the claim closes within 14 days');
  });

  it('reports certificates inside the expiry window and opens a rotation campaign over exactly those', async () => {
    const ca = await call('post', '/v1/authorities', { name: 'Expiry CA', type: 'intermediate', parentId: root.id, subject: { commonName: 'Expiry CA' } });
    const soon = [];
    for (let i = 0; i < 3; i++) soon.push(await call('post', '/v1/certificates', { authorityId: ca.id, csr: deviceKeyAndCsr(`soon-${i}`).csrPem, profile: 'device', thingName: `soon-${i}`, validityDays: 40 }));
    const later = await call('post', '/v1/certificates', { authorityId: ca.id, csr: deviceKeyAndCsr('later-0').csrPem, profile: 'device', thingName: 'later-0', validityDays: 400 });
    let audit = await finishedAudit({ deviceExpiryDays: 30 });
    assert.equal(audit.findings.filter((f: Body) => f.type === 'DEVICE_CERTIFICATE_EXPIRING' && f.details.authorityId === ca.id).length, 0, 'nothing expires within 30 days yet');

    clock.advance(15 * DAY);
    audit = await finishedAudit({ deviceExpiryDays: 30 });
    const expiring = audit.findings.find((f: Body) => f.type === 'DEVICE_CERTIFICATE_EXPIRING' && f.details.authorityId === ca.id);
    assert.ok(expiring, JSON.stringify(audit.summary));
    assert.deepEqual(new Set(expiring.details.certificateIds), new Set(soon.map((c) => c.id)));
    assert.ok(!expiring.details.certificateIds.includes(later.id));

    const remediated = await call('post', `/v1/fleet/audits/${audit.id}/findings/${expiring.id}/remediate`, undefined, 200);
    const campaign = await call('get', `/v1/rotations/${remediated.remediationResult.campaignId}`);
    assert.equal(campaign.progress.total, 3);
    const pending = await call('get', `/v1/rotations/${campaign.id}/pending`);
    assert.deepEqual(new Set(pending.items.map((m: Body) => m.certificateId)), new Set(soon.map((c) => c.id)));
  });
});
