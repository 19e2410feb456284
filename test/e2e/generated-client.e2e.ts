import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  type AuthorityDto,
  type Client,
  connect,
  createApiKey,
  createAuthority,
  createClaim,
  exchange,
  getAuthorityCrl,
  getCertificate,
  getClaim,
  type GetCertificateErrors,
  issueCertificate,
  listAuditEvents,
  listCertificates,
  replaceAllowlist,
  revokeCertificate,
  revokeClaim,
  type RevokeCertificateErrors,
  verifyAuditChain,
} from '../../clients/fleet-pki-client';
import { contractCheckedFetch, tlsFetch } from '../support/contract-fetch';
import { recordPrivateKey } from '../support/log-capture';
import { OpenSslWorkspace } from '../support/openssl';
import { stationCredentials, stationToken } from '../support/station';
import { drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * The generated TypeScript client (clients/typescript/, `npm run client`) driving the service end to end, and nothing
 * else: no supertest, no hand-made request. The app listens on a real port; every answer the client receives is
 * checked against openapi.yaml by the response validator (support/contract-fetch.ts). openssl makes the keys and
 * CSRs and checks what comes back. The operator flow (CAs, issue, search with cursor paging, get, revoke, CRL, audit
 * verify) and the station flow (claim with a generated key, allow-list, exchange by x5c JWT and by mutual TLS, retry,
 * cascade revocation), with the typed errors (`error.code` from the problem+json body) along the way.
 */
for (const { driver, skip } of drivers())
describe(`generated TypeScript client on ${driver}`, { skip }, () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const contract = contractCheckedFetch();
  let admin: Client;
  let root: { id: string; certificatePem: string };
  let intermediate: { id: string; certificatePem: string; chainPem: string };
  /** An active authority always has its certificate (only a pending external-root intermediate has none). */
  const issuedAuthority = (a: AuthorityDto) => ({ id: a.id, certificatePem: a.certificatePem ?? assert.fail('no certificatePem'), chainPem: a.chainPem ?? assert.fail('no chainPem') });

  before(async () => {
    t = await startTestApp(driver);
    admin = connect({ baseUrl: t.baseUrl, apiKey: t.adminKey, fetch: contract.fetch });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  /** A client as another role: an API key made through the client. */
  async function clientAs(role: 'operator' | 'auditor'): Promise<Client> {
    const { data, error } = await createApiKey({ client: admin, body: { name: `${role} (generated client test)`, role } });
    assert.ok(data, JSON.stringify(error));
    assert.equal(data.role, role);
    return connect({ baseUrl: t.baseUrl, apiKey: data.key, fetch: contract.fetch });
  }

  describe('operator flow', () => {
    let operator: Client;
    const issued: { id: string; serial: string; thingName: string | null }[] = [];

    it('creates a root and an intermediate CA', async () => {
      const made = await createAuthority({
        client: admin,
        body: { name: 'Client Root', type: 'root', keySpec: 'EC_P384', subject: { commonName: 'Client Root CA', organization: 'Acme' }, pathLength: 1 },
      });
      assert.equal(made.response?.status, 201, JSON.stringify(made.error));
      assert.ok(made.data);
      root = issuedAuthority(made.data);
      assert.equal(made.data.type, 'root');
      assert.equal(made.data.status, 'active');
      assert.ok(ssl.verify({ rootPem: root.certificatePem, leafPem: root.certificatePem }).ok);

      const sub = await createAuthority({
        client: admin,
        body: { name: 'Client Devices', type: 'intermediate', parentId: root.id, keySpec: 'EC_P256', subject: { commonName: 'Client Device CA' } },
      });
      assert.ok(sub.data, JSON.stringify(sub.error));
      intermediate = issuedAuthority(sub.data);
      assert.equal(intermediate.chainPem, intermediate.certificatePem + root.certificatePem);
      const verified = ssl.verify({ rootPem: root.certificatePem, leafPem: intermediate.certificatePem });
      assert.ok(verified.ok, verified.output);
    });

    it('issues certificates from openssl CSRs as an operator, and openssl verifies them', async () => {
      operator = await clientAs('operator');
      for (const n of [1, 2, 3]) {
        const csr = ssl.newCsr('ec:P-256', `/CN=client-sensor-${n}`);
        const { data, error, response } = await issueCertificate({
          client: operator,
          body: { authorityId: intermediate.id, csr: csr.csrPem, profile: 'device', thingName: `client-sensor-${n}`, validityDays: 30 },
        });
        assert.equal(response?.status, 201, JSON.stringify(error));
        assert.ok(data);
        assert.equal(data.status, 'active');
        assert.match(data.serial, /^[0-9a-f]+$/);
        const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: intermediate.certificatePem, leafPem: data.certificatePem });
        assert.ok(verified.ok, verified.output);
        issued.push({ id: data.id, serial: data.serial, thingName: data.thingName });
      }
    });

    it('refuses a CSR that is not one, with a typed 400 problem', async () => {
      const { data, error, response } = await issueCertificate({
        client: operator,
        body: { authorityId: intermediate.id, csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', profile: 'device' },
      });
      assert.equal(data, undefined);
      assert.equal(response?.status, 400);
      assert.ok(error);
      assert.equal(error.code, 'INVALID_CSR');
      assert.equal(error.status, 400);
    });

    it('searches with filters and follows the cursor across pages', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const { data, error } = await listCertificates({ client: operator, query: { authorityId: intermediate.id, status: 'active', limit: 2, cursor } });
        assert.ok(data, JSON.stringify(error));
        assert.ok(data.items.length <= 2);
        seen.push(...data.items.map((item) => item.id));
        cursor = data.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      assert.equal(pages, 2);
      assert.deepEqual([...seen].sort(), issued.map((c) => c.id).sort());

      const byThing = await listCertificates({ client: operator, query: { thingName: 'client-sensor-2' } });
      assert.deepEqual(byThing.data?.items.map((item) => item.id), [issued[1].id]);
      const bySerial = await listCertificates({ client: operator, query: { serial: issued[0].serial } });
      assert.deepEqual(bySerial.data?.items.map((item) => item.id), [issued[0].id]);

      const bad = await listCertificates({ client: operator, query: { cursor: 'not-a-cursor' } });
      assert.equal(bad.response?.status, 400);
      assert.equal(bad.error?.code, 'INVALID_CURSOR');
    });

    it('gets one certificate, and a typed 404 for an unknown id', async () => {
      const { data, error } = await getCertificate({ client: operator, path: { id: issued[0].id } });
      assert.ok(data, JSON.stringify(error));
      assert.equal(data.serial, issued[0].serial);
      assert.equal(data.chainPem, intermediate.certificatePem + root.certificatePem);

      const missing = await getCertificate({ client: operator, path: { id: randomUUID() } });
      assert.equal(missing.data, undefined);
      assert.equal(missing.response?.status, 404);
      const notFound: GetCertificateErrors[404]['code'] = 'CERTIFICATE_NOT_FOUND';
      assert.equal(missing.error?.code, notFound);
    });

    it('revokes one (an auditor may not), and a second revocation is a typed 409', async () => {
      const auditor = await clientAs('auditor');
      const refused = await revokeCertificate({ client: auditor, path: { id: issued[0].id }, body: { reason: 'keyCompromise' } });
      assert.equal(refused.response?.status, 403);
      assert.equal(refused.error?.code, 'FORBIDDEN');

      const { data, error } = await revokeCertificate({ client: operator, path: { id: issued[0].id }, body: { reason: 'keyCompromise' } });
      assert.ok(data, JSON.stringify(error));
      assert.equal(data.status, 'revoked');
      assert.equal(data.revocationReason, 'keyCompromise');
      assert.ok(data.revokedAt);

      const again = await revokeCertificate({ client: operator, path: { id: issued[0].id }, body: { reason: 'keyCompromise' } });
      assert.equal(again.response?.status, 409);
      // Typed per status: this fails to compile if openapi.yaml stops declaring the code for revokeCertificate's 409.
      const alreadyRevoked: RevokeCertificateErrors[409]['code'] = 'CERTIFICATE_ALREADY_REVOKED';
      assert.equal(again.error?.code, alreadyRevoked);

      const revoked = await listCertificates({ client: operator, query: { authorityId: intermediate.id, status: 'revoked' } });
      assert.deepEqual(revoked.data?.items.map((item) => item.id), [issued[0].id]);
    });

    it('fetches the CRL as binary DER that openssl parses and that lists the revoked serial', async () => {
      const crl = await getAuthorityCrl({ client: connect({ baseUrl: t.baseUrl, fetch: contract.fetch }), path: { id: intermediate.id } });
      assert.equal(crl.response?.status, 200, JSON.stringify(crl.error));
      assert.equal(crl.response?.headers.get('content-type'), 'application/pkix-crl');
      assert.ok(crl.data instanceof Blob, 'a binary body, not JSON');
      const der = Buffer.from(await crl.data.arrayBuffer());
      const parsed = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('intermediate.crl', der), '-noout', '-text']);
      assert.equal(parsed.status, 0, parsed.output);
      assert.match(parsed.output, new RegExp(`Serial Number: ${issued[0].serial.toUpperCase()}`));
      assert.doesNotMatch(parsed.output, new RegExp(`Serial Number: ${issued[1].serial.toUpperCase()}`));
      assert.match(parsed.output, /Key Compromise/);
      const verified = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('intermediate.crl'), '-noout', '-CAfile', ssl.file('intermediate.pem', intermediate.certificatePem)]);
      assert.match(verified.output, /verify OK/);

      const missing = await getAuthorityCrl({ client: admin, path: { id: randomUUID() } });
      assert.equal(missing.response?.status, 404);
      assert.equal(missing.error?.code, 'AUTHORITY_NOT_FOUND');
    });

    it('verifies the audit chain', async () => {
      const { data, error } = await verifyAuditChain({ client: admin });
      assert.ok(data, JSON.stringify(error));
      assert.equal(data.ok, true);
      assert.equal(data.firstBrokenSeq, null);
      assert.ok(data.checked > 5);
    });
  });

  describe('station flow', () => {
    let claimCa: { id: string };
    let deviceCa: { id: string; certificatePem: string; chainPem: string };
    const station = () => connect({ baseUrl: t.baseUrl, fetch: contract.fetch });

    it('creates a claim with a generated claim certificate, and the station exchanges serial + CSR for a device certificate', async () => {
      assert.ok(root, 'the operator flow made the root');
      const claims = await createAuthority({ client: admin, body: { name: 'Client Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Client Claims CA' } } });
      assert.ok(claims.data, JSON.stringify(claims.error));
      claimCa = claims.data;
      const devices = await createAuthority({ client: admin, body: { name: 'Client Line Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Client Line Device CA' } } });
      assert.ok(devices.data, JSON.stringify(devices.error));
      deviceCa = issuedAuthority(devices.data);

      const made = await createClaim({
        client: admin,
        body: {
          name: 'Line 1',
          factory: 'Client factory',
          claimAuthorityId: claimCa.id,
          deviceAuthorityId: deviceCa.id,
          maxDevices: 3,
          notAfter: new Date(Date.now() + 7 * 86_400_000).toISOString(),
          thingNameTemplate: 'line1-{serial}',
          claimCertificate: { generateKey: true },
        },
      });
      assert.equal(made.response?.status, 201, JSON.stringify(made.error));
      assert.ok(made.data);
      const claim = made.data;
      assert.ok(claim.claimCertificate.privateKeyPem, 'the generated key, shown once');
      const credentials = stationCredentials({ id: claim.id, claimCertificate: { certificatePem: claim.claimCertificate.certificatePem, privateKeyPem: claim.claimCertificate.privateKeyPem } });

      // The allow-list, as a JSON array and as CSV.
      const listed = await replaceAllowlist({ client: admin, path: { id: claim.id }, body: ['SN0001', 'SN0002', 'SN0003', 'SN0004'] });
      assert.ok(listed.data, JSON.stringify(listed.error));
      assert.equal(listed.data.allowlistSize, 4);
      // CSV: the SDK types the JSON body, so the CSV text goes through unserialized with its own Content-Type.
      const csv = await replaceAllowlist({
        client: admin,
        path: { id: claim.id },
        body: 'serial\nSN0001\nSN0002\nSN0003\nSN0004\nSN0005\n' as never,
        bodySerializer: null,
        headers: { 'Content-Type': 'text/csv' },
      });
      assert.equal(csv.data?.allowlistSize, 5, JSON.stringify(csv.error));

      const csr = ssl.newCsr('ec:P-256', '/CN=SN0001');
      const first = await exchange({ client: station(), auth: stationToken(t, credentials), body: { deviceSerial: 'SN0001', csr: csr.csrPem } });
      assert.equal(first.response?.status, 201, JSON.stringify(first.error));
      assert.ok(first.data);
      assert.equal(first.data.thingName, 'line1-SN0001');
      const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: deviceCa.certificatePem, leafPem: first.data.certificatePem });
      assert.ok(verified.ok, verified.output);

      // The same serial and key again is a retry: 200 with the same certificate.
      const retry = await exchange({ client: station(), auth: stationToken(t, credentials), body: { deviceSerial: 'SN0001', csr: csr.csrPem } });
      assert.equal(retry.response?.status, 200, JSON.stringify(retry.error));
      assert.equal(retry.data?.id, first.data.id);

      // Without the station's token: a typed 401, whatever the body.
      const anonymous = await exchange({ client: station(), body: { deviceSerial: 'SN0002', csr: csr.csrPem } });
      assert.equal(anonymous.response?.status, 401);
      assert.equal(anonymous.error?.code, 'UNAUTHENTICATED');
      // A token is single use.
      const token = stationToken(t, credentials);
      const second = await exchange({ client: station(), auth: token, body: { deviceSerial: 'SN0002', csr: ssl.newCsr('ec:P-256', '/CN=SN0002').csrPem } });
      assert.equal(second.response?.status, 201, JSON.stringify(second.error));
      const replayed = await exchange({ client: station(), auth: token, body: { deviceSerial: 'SN0003', csr: ssl.newCsr('ec:P-256', '/CN=SN0003').csrPem } });
      assert.equal(replayed.response?.status, 401);
      assert.equal(replayed.error?.code, 'TOKEN_REPLAYED');

      const usage = await getClaim({ client: admin, path: { id: claim.id } });
      assert.ok(usage.data, JSON.stringify(usage.error));
      assert.equal(usage.data.used, 2);
      assert.equal(usage.data.remaining, 1);

      const provisioned = await listCertificates({ client: admin, query: { claimId: claim.id } });
      assert.equal(provisioned.data?.items.length, 2);

      // Emergency: the claim is revoked with cascade; its devices are revoked and the station is refused.
      const revoked = await revokeClaim({ client: admin, path: { id: claim.id }, body: { reason: 'keyCompromise', cascade: true } });
      assert.ok(revoked.data, JSON.stringify(revoked.error));
      assert.equal(revoked.data.status, 'revoked');
      const cascaded = await listCertificates({ client: admin, query: { claimId: claim.id, status: 'revoked' } });
      assert.equal(cascaded.data?.items.length, 2);
      const refused = await exchange({ client: station(), auth: stationToken(t, credentials), body: { deviceSerial: 'SN0004', csr: ssl.newCsr('ec:P-256', '/CN=SN0004').csrPem } });
      assert.ok([401, 403].includes(refused.response?.status ?? 0), `${refused.response?.status} ${JSON.stringify(refused.error)}`);
      assert.ok(refused.error?.code === 'CLAIM_REVOKED' || refused.error?.code === 'CLAIM_CERTIFICATE_UNTRUSTED', JSON.stringify(refused.error));

      const crl = await getAuthorityCrl({ client: station(), path: { id: deviceCa.id } });
      assert.ok(crl.data instanceof Blob, JSON.stringify(crl.error));
      const text = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('devices.crl', Buffer.from(await crl.data.arrayBuffer())), '-noout', '-text']);
      assert.match(text.output, new RegExp(`Serial Number: ${first.data.serial.toUpperCase()}`));

      const audit = await verifyAuditChain({ client: admin });
      assert.equal(audit.data?.ok, true);
    });
  });

  describe('station flow over mutual TLS', () => {
    let tlsApp: TestApp;
    let serverCa: string;
    before(async () => {
      const server = ssl.tlsServer();
      serverCa = server.caPem;
      tlsApp = await startTestApp(driver, { env: server.env });
    });
    after(async () => {
      await tlsApp?.close();
    });

    it('exchanges with the claim certificate as the TLS client certificate, no token', async () => {
      // Each client's answers are checked against openapi.yaml, as for the plain-HTTP clients above.
      const operatorChecked = contractCheckedFetch(tlsFetch({ ca: serverCa }));
      const anonymousChecked = contractCheckedFetch(tlsFetch({ ca: serverCa }));
      const operator = connect({ baseUrl: tlsApp.baseUrl, apiKey: tlsApp.adminKey, fetch: operatorChecked.fetch });
      const made = async (body: Parameters<typeof createAuthority>[0]['body']) => {
        const { data, error } = await createAuthority({ client: operator, body });
        assert.ok(data, JSON.stringify(error));
        return issuedAuthority(data);
      };
      const tlsRoot = await made({ name: 'mTLS Root', type: 'root', subject: { commonName: 'mTLS Root' } });
      const claims = await made({ name: 'mTLS Claims', type: 'intermediate', parentId: tlsRoot.id, usage: 'claims', subject: { commonName: 'mTLS Claims' } });
      const devices = await made({ name: 'mTLS Devices', type: 'intermediate', parentId: tlsRoot.id, subject: { commonName: 'mTLS Devices' } });
      const claim = await createClaim({
        client: operator,
        body: {
          name: 'mTLS line', factory: 'F', claimAuthorityId: claims.id, deviceAuthorityId: devices.id, maxDevices: 2,
          notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'tls-{serial}', claimCertificate: { generateKey: true },
        },
      });
      assert.ok(claim.data?.claimCertificate.privateKeyPem, JSON.stringify(claim.error));
      recordPrivateKey(claim.data.claimCertificate.privateKeyPem);

      const stationChecked = contractCheckedFetch(tlsFetch({ ca: serverCa, cert: claim.data.claimCertificate.certificatePem, key: claim.data.claimCertificate.privateKeyPem }));
      const station = connect({ baseUrl: tlsApp.baseUrl, fetch: stationChecked.fetch });
      const { data, error, response } = await exchange({ client: station, body: { deviceSerial: 'M1', csr: ssl.newCsr('ec:P-256', '/CN=M1').csrPem } });
      assert.equal(response?.status, 201, JSON.stringify(error));
      assert.ok(data);
      assert.equal(data.thingName, 'tls-M1');
      const verified = ssl.verify({ rootPem: tlsRoot.certificatePem, intermediatesPem: devices.certificatePem, leafPem: data.certificatePem });
      assert.ok(verified.ok, verified.output);

      const events = await listAuditEvents({ client: operator, query: { action: 'certificate.issued', targetId: data.id } });
      const how = events.data?.items[0]?.details.station as { method?: string } | undefined;
      assert.equal(how?.method, 'mtls', JSON.stringify(events.error ?? events.data));

      // Without a client certificate: a typed 401.
      const anonymous = await exchange({ client: connect({ baseUrl: tlsApp.baseUrl, fetch: anonymousChecked.fetch }), body: { deviceSerial: 'M2', csr: ssl.newCsr('ec:P-256', '/CN=M2').csrPem } });
      assert.equal(anonymous.response?.status, 401);
      assert.equal(anonymous.error?.code, 'UNAUTHENTICATED');
      assert.deepEqual([...operatorChecked.mismatches, ...stationChecked.mismatches, ...anonymousChecked.mismatches], []);
      assert.ok(operatorChecked.checked() + stationChecked.checked() + anonymousChecked.checked() >= 7);
    });
  });

  it('received only answers that match openapi.yaml', () => {
    assert.deepEqual(contract.mismatches, []);
    assert.ok(contract.checked() >= 30, `checked ${contract.checked()} answers`);
  });
});
