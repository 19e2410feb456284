import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, KeyObject, randomUUID, sign } from 'node:crypto';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { DataSource } from 'typeorm';
import { children, pemEncode, readTlv } from '../../src/pki/der';
import { bitString, sequence } from '../../src/pki/der-writer';
import { JwsAlgorithm } from '../../src/pki/jws';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { pemDecode } from '../../tools/clients/pem';
import { signX5cJwt } from '../../tools/clients/station-jwt';
import { postJsonOverTls } from '../support/https-client';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/** The DER of every certificate in a PEM bundle, in order. */
function pemBlocks(pem: string): Buffer[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((block) => pemDecode(block, ['CERTIFICATE'])!);
}

/** The same TBSCertificate signed by another key: issuer name and AKI still those of our CA, the signature not. */
function resignedWithAnotherKey(der: Buffer): Buffer {
  const [tbs, algorithm] = children(der, readTlv(der, 0));
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const signature = sign('sha256', der.subarray(tbs.start, tbs.end), forger);
  return sequence(der.subarray(tbs.start, tbs.end), der.subarray(algorithm.start, algorithm.end), bitString(signature));
}

/**
 * Run-time chain validation of certificates that come from outside (src/certificates/certificate-authenticator.ts
 * with src/pki/issued-by.ts): a presented certificate whose stored row matches is still checked against its
 * authority's certificate with @peculiar/x509, and a JWT's extra x5c certificates must belong to the issuing
 * authority's chain. Stations and devices, by JWT and by mutual TLS, on both drivers.
 */
for (const { driver, skip } of drivers())
describe(`chain validation of presented certificates on ${driver}`, { skip }, () => {
  let t: TestApp;
  let db: DataSource;
  const ssl = new OpenSslWorkspace();
  let serverCaPem: string;
  let root: Body;
  let devices: Body;
  let claims: Body;
  let claim: Body;
  let claimKey: KeyObject;

  before(async () => {
    const server = ssl.tlsServer();
    serverCaPem = server.caPem;
    t = await startTestApp(driver, { env: server.env });
    db = t.app.get(DataSource);
    root = await admin('/v1/authorities', { name: 'Chain Root', type: 'root', subject: { commonName: 'Chain Root' } });
    claims = await admin('/v1/authorities', { name: 'Chain Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Chain Claims CA' } });
    devices = await admin('/v1/authorities', { name: 'Chain Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Chain Devices CA' } });
    claim = await admin('/v1/claims', {
      name: 'chain', factory: 'F', claimAuthorityId: claims.id, deviceAuthorityId: devices.id, maxDevices: 20,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'chain-{serial}', claimCertificate: { generateKey: true },
    });
    claimKey = createPrivateKey(claim.claimCertificate.privateKeyPem);
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  function request(path: string, body: object, options: { client?: { cert: string; key: string }; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Body }> {
    return postJsonOverTls(t.baseUrl, path, body, { serverCaPem, ...options });
  }

  async function admin(path: string, body: object): Promise<Body> {
    const res = await request(path, body, { headers: bearer(t.adminKey) });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  function jwt(chainDer: Buffer[], privateKey: KeyObject, audiencePath: string, alg: JwsAlgorithm = 'ES256'): string {
    const now = Math.floor(Date.now() / 1000);
    return signX5cJwt({ alg, privateKey, chainDer, payload: { aud: `${t.config.publicBaseUrl}${audiencePath}`, iat: now, exp: now + 120, jti: randomUUID() } });
  }

  function exchange(serial: string, auth: { token: string } | { client: { cert: string; key: string } }): Promise<{ status: number; body: Body }> {
    const body = { deviceSerial: serial, csr: deviceKeyAndCsr(serial).csrPem };
    return 'token' in auth ? request('/v1/provisioning/exchange', body, { headers: { Authorization: `Bearer ${auth.token}` } }) : request('/v1/provisioning/exchange', body, { client: auth.client });
  }

  async function issuedForClaim(): Promise<number> {
    const res = await t.http().get(`/v1/certificates?claimId=${claim.id}&limit=100`).set(bearer(t.adminKey)).disableTLSCerts();
    assert.equal(res.status, 200, res.text);
    return res.body.items.length;
  }

  /** Replaces a certificate row's DER (and so its fingerprint) with `der`, as a restored or tampered database would. */
  async function overwriteRow(id: string, der: Buffer, authorityId?: string): Promise<void> {
    const p = (n: number) => (driver === 'postgres' ? `$${n}` : '?');
    const fingerprint = createHash('sha256').update(der).digest('hex');
    await db.query(`UPDATE certificates SET certificate_der = ${p(1)}, fingerprint = ${p(2)}, authority_id = COALESCE(${p(3)}, authority_id) WHERE id = ${p(4)}`, [
      der.toString('base64'),
      fingerprint,
      authorityId ?? null,
      id,
    ]);
    const [row] = await db.query(`SELECT fingerprint, authority_id FROM certificates WHERE id = ${p(1)}`, [id]);
    assert.deepEqual({ ...row }, { fingerprint, authority_id: authorityId ?? row.authority_id }, 'the row was changed');
  }

  async function newDevice(thingName: string): Promise<{ cert: Body; key: KeyObject }> {
    const { csrPem, privateKey } = deviceKeyAndCsr(thingName);
    return { cert: await admin('/v1/certificates', { authorityId: devices.id, csr: csrPem, profile: 'device', thingName, validityDays: 30 }), key: privateKey };
  }

  it('authenticates a station whose x5c carries the claim CA chain after the claim certificate, by JWT and by mutual TLS', async () => {
    const chain = [...pemBlocks(claim.claimCertificate.certificatePem), ...pemBlocks(claim.claimCertificate.chainPem)];
    assert.equal(chain.length, 3, 'claim certificate, claims CA, root');
    const byJwt = await exchange('OK1', { token: jwt(chain, claimKey, '/v1/provisioning/exchange') });
    assert.equal(byJwt.status, 201, JSON.stringify(byJwt.body));
    const partial = await exchange('OK2', { token: jwt(chain.slice(0, 2), claimKey, '/v1/provisioning/exchange') });
    assert.equal(partial.status, 201, `the chain without its root: ${JSON.stringify(partial.body)}`);
    const byTls = await exchange('OK3', { client: { cert: claim.claimCertificate.certificatePem, key: claim.claimCertificate.privateKeyPem } });
    assert.equal(byTls.status, 201, JSON.stringify(byTls.body));
    // A factory line repeats its claim certificate: the remembered validation serves the next requests.
    for (const serial of ['OK4', 'OK5']) assert.equal((await exchange(serial, { token: jwt(chain.slice(0, 1), claimKey, '/v1/provisioning/exchange') })).status, 201);
  });

  it("refuses an x5c whose extra certificate is not in the issuing authority's chain: another of our CAs, a foreign CA", async () => {
    const before = await issuedForClaim();
    const claimDer = pemBlocks(claim.claimCertificate.certificatePem)[0];
    const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'foreign.key', '-out', 'foreign.pem', '-subj', '/CN=Chain Claims CA', '-days', '1']);
    assert.equal(made.status, 0, made.output);
    for (const [name, extra] of [
      ['the devices CA (ours, but not the claim certificate’s issuer)', pemBlocks(devices.certificatePem)[0]],
      ['an openssl-made CA with the claims CA’s name', pemBlocks(fs.readFileSync(ssl.file('foreign.pem'), 'utf8'))[0]],
    ] as const) {
      const res = await exchange('BAD1', { token: jwt([claimDer, extra], claimKey, '/v1/provisioning/exchange') });
      assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CLAIM_CERTIFICATE_UNTRUSTED', name);
      assert.match(res.body.detail, /x5c\[1\] is not a certificate of the issuing authority's chain/, name);
    }
    assert.equal(await issuedForClaim(), before, 'nothing issued');
  });

  it("refuses a device certificate whose row matches but which its authority did not sign (re-signed by another key), by JWT and by mutual TLS", async () => {
    const device = await newDevice('forged-device');
    const authentic = await request('/v1/certificates/renew', { csr: deviceKeyAndCsr('forged-device').csrPem }, { headers: { Authorization: `Bearer ${jwt(pemBlocks(device.cert.certificatePem), device.key, '/v1/certificates/renew')}` } });
    assert.equal(authentic.status, 403, 'authenticated, then refused by the renewal window');
    assert.equal(authentic.body.code, 'RENEWAL_NOT_YET_ALLOWED');

    const forged = resignedWithAnotherKey(pemBlocks(device.cert.certificatePem)[0]);
    await overwriteRow(device.cert.id, forged);
    const forgedPem = pemEncode('CERTIFICATE', forged);
    const devicePem = device.key.export({ type: 'pkcs8', format: 'pem' }).toString();
    for (const [method, auth] of [
      ['jwt', { headers: { Authorization: `Bearer ${jwt([forged], device.key, '/v1/certificates/renew')}` } }],
      ['mtls', { client: { cert: forgedPem, key: devicePem } }],
    ] as const) {
      const res = await request('/v1/certificates/renew', { csr: deviceKeyAndCsr('forged-device').csrPem }, auth);
      assert.equal(res.status, 401, `${method}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CERTIFICATE_UNTRUSTED', method);
      assert.match(res.body.detail, new RegExp(`does not verify against its authority ${devices.id}: the certificate's signature does not verify with the authority's public key`), method);
    }
  });

  it('refuses a claim certificate re-signed by another key over mutual TLS; nothing is issued', async () => {
    const other = await admin('/v1/claims', {
      name: 'forged', factory: 'F', claimAuthorityId: claims.id, deviceAuthorityId: devices.id, maxDevices: 5,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'forged-{serial}', claimCertificate: { generateKey: true },
    });
    const forged = resignedWithAnotherKey(pemBlocks(other.claimCertificate.certificatePem)[0]);
    const rows = await db.query(`SELECT id FROM certificates WHERE fingerprint = ${driver === 'postgres' ? '$1' : '?'}`, [other.claimCertificate.fingerprint]);
    await overwriteRow(rows[0].id, forged);
    const forgedPem = pemEncode('CERTIFICATE', forged);
    const res = await exchange('FORGED1', { client: { cert: forgedPem, key: other.claimCertificate.privateKeyPem } });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.code, 'CLAIM_CERTIFICATE_UNTRUSTED');
    assert.match(res.body.detail, /signature does not verify with the authority's public key/);
    const after = await t.http().get(`/v1/certificates?claimId=${other.id}&limit=10`).set(bearer(t.adminKey)).disableTLSCerts();
    assert.equal(after.body.items.length, 0, 'nothing issued');
  });

  it('refuses a certificate whose row was moved to another authority: the issuer name is not that authority’s', async () => {
    const device = await newDevice('moved-device');
    const elsewhere = await admin('/v1/authorities', { name: 'Chain Devices 2', type: 'intermediate', parentId: root.id, subject: { commonName: 'Chain Devices CA 2' } });
    await overwriteRow(device.cert.id, pemBlocks(device.cert.certificatePem)[0], elsewhere.id);
    const res = await request('/v1/certificates/renew', { csr: deviceKeyAndCsr('moved-device').csrPem }, { headers: { Authorization: `Bearer ${jwt(pemBlocks(device.cert.certificatePem), device.key, '/v1/certificates/renew')}` } });
    assert.equal(res.status, 401, JSON.stringify(res.body));
    assert.equal(res.body.code, 'CERTIFICATE_UNTRUSTED');
    assert.match(res.body.detail, /the issuer "CN=Chain Devices CA" is not the authority's subject "CN=Chain Devices CA 2"/);
  });
});
