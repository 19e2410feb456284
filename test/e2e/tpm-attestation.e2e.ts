import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { Pruner } from '../../src/database/pruner';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, StationCredentials, stationTokenFor } from '../support/station';
import { SoftwareTpm } from '../support/swtpm';
import { bearer, drivers, ManualClock, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

const ATTESTATIONS = '/v1/provisioning/attestations';
/** The application key every happy-path device uses, persisted in the TPM; temporary keys go to TEMP. */
const DEVICE_KEY = '0x81000002';
const TEMP_KEY = '0x81000010';
const PLAIN_SIGNER = '0x81000006';
const ECC_EK = '0x81010002';
const b64 = (b: Buffer): string => b.toString('base64');

const missingTpm = SoftwareTpm.missing();

/** An ECDSA P-256 signature from DER (what openssl writes) to JWS's raw r‖s. */
function derSignatureToRaw(der: Buffer): Buffer {
  let offset = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
  const part = (): Buffer => {
    const length = der[offset + 1];
    const value = der.subarray(offset + 2, offset + 2 + length);
    offset += 2 + length;
    const trimmed = value.subarray(Math.max(0, value.length - 32));
    return Buffer.concat([Buffer.alloc(32 - trimmed.length), trimmed]);
  };
  return Buffer.concat([part(), part()]);
}

/**
 * Hardware-rooted identity end to end (docs/hardware-identity.md), swtpm playing the device with tpm2-tools and the
 * openssl tpm2 provider: EK certificate from a test "TPM vendor" CA on the allow-list → TPM2_Certify evidence →
 * MakeCredential challenge → ActivateCredential → device certificate for the TPM-resident key; every refusal with
 * its code and nothing issued; the claim's attestation requirement; the quota under 50 concurrent enrollments; and
 * renewal after expiry with and without attestation.
 */
for (const { driver, skip } of drivers())
describe(`TPM attested enrollment on ${driver}`, { skip: skip || missingTpm }, () => {
  let t: TestApp;
  let tpm: SoftwareTpm;
  const clock = new ManualClock();
  const ssl = new OpenSslWorkspace();
  let rootPem: string;
  let claimCa: { id: string };
  let deviceCa: { id: string };
  let vendorRootId: string;
  let ekCertDer: Buffer;
  let ekPublic: Buffer;

  before(async () => {
    for (const [name, cn] of [['vendor', 'Test TPM Vendor EK CA'], ['rogue', 'Rogue TPM Vendor EK CA']]) {
      const made = ssl.run([
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-keyout', `${name}-ca.key`, '-out', `${name}-ca.pem`,
        '-subj', `/O=${cn.split(' EK')[0]}/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      assert.equal(made.status, 0, made.output);
    }
    tpm = await SoftwareTpm.start({ keyFile: ssl.file('vendor-ca.key'), certFile: ssl.file('vendor-ca.pem') });
    ekCertDer = await tpm.ekCertificateDer();
    ekPublic = await tpm.ekPublic();
    // The EK certificate was made just now (to the second): the app's clock starts after it, as a device's would be.
    clock.advance(Date.now() + 2000 - clock.now().getTime());
    t = await startTestApp(driver, { clock, env: { RENEWAL_AFTER_EXPIRY_DAYS: 'device=30' } });
    const root = await admin('post', '/v1/authorities', { name: 'Root', type: 'root', subject: { commonName: 'TPM Test Root' } });
    rootPem = root.certificatePem;
    claimCa = await admin('post', '/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'TPM Test Claims CA' } });
    deviceCa = await admin('post', '/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'TPM Test Devices CA' } });
    const vendor = await admin('post', '/v1/tpm/manufacturer-roots', { name: 'Test TPM vendor', certificatePem: readText(ssl.file('vendor-ca.pem')) });
    vendorRootId = vendor.id;
  });
  after(async () => {
    await tpm?.stop();
    await t?.close();
    ssl.cleanup();
  });

  function readText(file: string): string {
    return fs.readFileSync(file, 'utf8');
  }

  async function admin(method: 'post' | 'get' | 'delete', path: string, body?: unknown, expected = [200, 201]): Promise<Body> {
    const req = t.http()[method](path).set(bearer(t.adminKey));
    const res = await (body === undefined ? req : req.send(body as object));
    assert.ok(expected.includes(res.status), `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  /** A fresh station token for `path`'s audience, dated by the app's (manual) clock. */
  function token(station: StationCredentials, path = ATTESTATIONS): string {
    const now = Math.floor(clock.now().getTime() / 1000);
    return stationTokenFor(`${t.config.publicBaseUrl}${path}`, station, { iat: now, exp: now + 120 });
  }

  function attest(station: StationCredentials, body: object) {
    return t.http().post(ATTESTATIONS).set('Authorization', `Bearer ${token(station)}`).send(body);
  }

  function activate(station: StationCredentials, challengeId: string, secret: Buffer) {
    return t.http().post(`${ATTESTATIONS}/${challengeId}/activation`).set('Authorization', `Bearer ${token(station)}`).send({ secret: b64(secret) });
  }

  async function newClaim(attestation: string, maxDevices = 100): Promise<{ claim: Body; station: StationCredentials }> {
    return createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices, attestation, thingNameTemplate: '{serial}' });
  }

  /** What the device sends: its EK certificate, the AK, the key at `handle` with its certify, and a CSR signed in the TPM. */
  async function evidence(handle: string, serial: string, overrides: Record<string, string> = {}): Promise<Record<string, string>> {
    const { certifyInfo, certifySignature } = await tpm.certify(handle);
    return {
      deviceSerial: serial,
      csr: await tpm.csr(handle, `/CN=${serial}`),
      ekCertificate: b64(ekCertDer),
      ekPublic: b64(ekPublic),
      akPublic: b64(tpm.akPublic()),
      keyPublic: b64(await readPublic(handle)),
      certifyInfo: b64(certifyInfo),
      certifySignature: b64(certifySignature),
      ...overrides,
    };
  }

  async function readPublic(handle: string): Promise<Buffer> {
    const name = `pub-${randomBytes(4).toString('hex')}.pub`;
    await tpm.tool('tpm2_readpublic', ['-c', handle, '-o', name]);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    return tpm.read(name);
  }

  async function claimState(id: string): Promise<{ used: number; issued: number }> {
    const claim = await admin('get', `/v1/claims/${id}`);
    const page = await admin('get', '/v1/audit?action=certificate.issued&limit=500');
    // Device certificates only: the claim certificate's issuance names the claim too.
    const events = page.items as { details: { claimId?: string; profile?: string } }[];
    return { used: claim.used, issued: events.filter((e) => e.details.claimId === id && e.details.profile !== 'claim').length };
  }

  /** Refused with `status` and `code`, and nothing issued on the claim. */
  async function assertRefused(res: Response, status: number, code: string, claimId: string, before: { used: number; issued: number }): Promise<void> {
    assert.equal(res.status, status, res.text);
    assert.equal(res.body.code, code, res.text);
    assert.deepEqual(await claimState(claimId), before, `nothing issued after ${code}`);
  }

  describe('must-show 1: attestation, challenge, activation, certificate', () => {
    let station: StationCredentials;
    let claimId: string;

    before(async () => {
      const made = await newClaim('tpm');
      station = made.station;
      claimId = made.claim.id;
      await tpm.createKey(DEVICE_KEY);
    });

    it('issues a certificate for the TPM-resident key that openssl verify -x509_strict accepts, and a TPM signature verifies with it', async () => {
      const started = await attest(station, await evidence(DEVICE_KEY, 'tpm-0001'));
      assert.equal(started.status, 201, started.text);
      assert.equal(started.body.ekCertificateSha256, createHash('sha256').update(ekCertDer).digest('hex'));
      const secret = await tpm.activate(Buffer.from(started.body.credentialBlob, 'base64'));
      const issued = await activate(station, started.body.challengeId, secret);
      assert.equal(issued.status, 201, issued.text);
      assert.equal(issued.body.thingName, 'tpm-0001');
      assert.equal(issued.body.hardwareAttestation.type, 'tpm2');
      assert.equal(issued.body.hardwareAttestation.manufacturerRootId, vendorRootId);
      assert.equal(issued.body.hardwareAttestation.akName, started.body.akName);

      const verified = ssl.verify({ rootPem, intermediatesPem: issued.body.chainPem, leafPem: issued.body.certificatePem });
      assert.ok(verified.ok, verified.output);
      const message = Buffer.from(`hello from the TPM ${Date.now()}`);
      const signature = await tpm.sign(DEVICE_KEY, message);
      assert.ok(verify('sha256', message, createPublicKey(issued.body.certificatePem), signature), 'the TPM signature verifies with the issued certificate');

      // The record, the API and the audit keep what was proven.
      const record = await admin('get', `/v1/certificates/${issued.body.id}`);
      assert.equal(record.hardwareAttestation.ekCertificateSha256, started.body.ekCertificateSha256);
      assert.match(record.hardwareAttestation.ekIssuer, /Test TPM Vendor EK CA/);
      assert.match(record.hardwareAttestation.keyName, /^000b[0-9a-f]{64}$/);
      const audit = await admin('get', '/v1/audit?action=certificate.issued&limit=500');
      const event = (audit.items as { target: { id: string }; details: { hardwareAttestation?: { akName: string } } }[]).find((e) => e.target.id === issued.body.id);
      assert.equal(event?.details.hardwareAttestation?.akName, started.body.akName);

      // The challenge is single use: replaying the right answer is refused, and nothing more is issued.
      const replay = await activate(station, started.body.challengeId, secret);
      await assertRefused(replay, 409, 'TPM_CHALLENGE_USED', claimId, await claimState(claimId));
    });

    it('works with an ECC P-256 EK too (TCG default template; the credential sealed by ECDH + KDFe)', async () => {
      // The vendor certifies the TPM's P-256 EK (made by tpm2_createek), as flow.sh step 3b does.
      await tpm.tool('tpm2_createek', ['-G', 'ecc', '-c', ECC_EK, '-u', 'ek-ecc.pub']);
      await tpm.tool('tpm2_flushcontext', ['-t']);
      await tpm.tool('tpm2_readpublic', ['-c', ECC_EK, '-f', 'pem', '-o', 'ek-ecc.pem']);
      await tpm.tool('tpm2_flushcontext', ['-t']);
      const dummy = ssl.newCsr('ec:P-256', '/CN=unused');
      ssl.file('dummy-ecc.csr', dummy.csrPem);
      ssl.file('ek-ext.cnf', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyAgreement\nextendedKeyUsage=2.23.133.8.1\n');
      const made = ssl.run(['x509', '-req', '-in', 'dummy-ecc.csr', '-force_pubkey', tpm.file('ek-ecc.pem'), '-subj', '/', '-CA', 'vendor-ca.pem', '-CAkey', 'vendor-ca.key',
        '-set_serial', '0x4455', '-days', '3650', '-sha256', '-extfile', 'ek-ext.cnf', '-outform', 'DER', '-out', 'ek-ecc.der']);
      assert.equal(made.status, 0, made.output);
      // This EK certificate starts now (to the second): the app's clock must not be behind it.
      clock.advance(Math.max(0, Date.now() + 2000 - clock.now().getTime()));
      const started = await attest(station, await evidence(DEVICE_KEY, 'tpm-ecc-ek-1', { ekCertificate: b64(fs.readFileSync(ssl.file('ek-ecc.der'))), ekPublic: b64(tpm.read('ek-ecc.pub')) }));
      assert.equal(started.status, 201, started.text);
      const secret = await tpm.activate(Buffer.from(started.body.credentialBlob, 'base64'), SoftwareTpm.AK, ECC_EK);
      const issued = await activate(station, started.body.challengeId, secret);
      // Same key as tpm-0001 on another serial: issued (the claim allows it), for the P-256 EK's certificate.
      assert.equal(issued.status, 201, issued.text);
      assert.equal(issued.body.hardwareAttestation.ekCertificateSha256, createHash('sha256').update(fs.readFileSync(ssl.file('ek-ecc.der'))).digest('hex'));
      await tpm.evict(ECC_EK);
    });

    it('refuses an EK certificate from a vendor not on the allow-list (403 TPM_EK_UNTRUSTED)', async () => {
      // The same EK key, certified by a "vendor" the operators never allowed.
      const ekPem = ssl.file('ek.pem', new X509Certificate(ekCertDer).publicKey.export({ type: 'spki', format: 'pem' }));
      const dummy = ssl.newCsr('ec:P-256', '/CN=unused');
      ssl.file('dummy.csr', dummy.csrPem);
      const forged = ssl.run(['x509', '-req', '-in', 'dummy.csr', '-force_pubkey', ekPem, '-subj', '/', '-CA', 'rogue-ca.pem', '-CAkey', 'rogue-ca.key', '-set_serial', '0x1234', '-days', '365', '-outform', 'DER', '-out', 'rogue-ek.der']);
      assert.equal(forged.status, 0, forged.output);
      const before = await claimState(claimId);
      const res = await attest(station, await evidence(DEVICE_KEY, 'tpm-0002', { ekCertificate: b64(fs.readFileSync(ssl.file('rogue-ek.der'))) }));
      await assertRefused(res, 403, 'TPM_EK_UNTRUSTED', claimId, before);
    });

    it('refuses a certificate of an allowed vendor that is not an EK certificate (no tcg-kp-EKCertificate usage, or a CA): 403 TPM_EK_UNTRUSTED', async () => {
      // The same EK key, certified by the allowed vendor CA, but as a TLS server key, and then as a CA.
      const ekPem = ssl.file('ek-other.pem', new X509Certificate(ekCertDer).publicKey.export({ type: 'spki', format: 'pem' }));
      const dummy = ssl.newCsr('ec:P-256', '/CN=unused');
      ssl.file('dummy-other.csr', dummy.csrPem);
      const variants = [
        ['tls', 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n'],
        ['none', 'basicConstraints=critical,CA:FALSE\n'],
        ['ca', 'basicConstraints=critical,CA:TRUE\nextendedKeyUsage=2.23.133.8.1\n'],
      ];
      for (const [name, extensions] of variants) {
        ssl.file(`ek-${name}.cnf`, extensions);
        const made = ssl.run(['x509', '-req', '-in', 'dummy-other.csr', '-force_pubkey', ekPem, '-subj', '/', '-CA', 'vendor-ca.pem', '-CAkey', 'vendor-ca.key',
          '-set_serial', '0x5566', '-days', '365', '-sha256', '-extfile', `ek-${name}.cnf`, '-outform', 'DER', '-out', `ek-${name}.der`]);
        assert.equal(made.status, 0, made.output);
        clock.advance(Math.max(0, Date.now() + 2000 - clock.now().getTime()));
        const before = await claimState(claimId);
        const res = await attest(station, await evidence(DEVICE_KEY, `tpm-not-ek-${name}`, { ekCertificate: b64(fs.readFileSync(ssl.file(`ek-${name}.der`))) }));
        await assertRefused(res, 403, 'TPM_EK_UNTRUSTED', claimId, before);
        assert.match(res.body.detail, name === 'ca' ? /CA certificate/ : /tcg-kp-EKCertificate/);
      }
    });

    it('refuses a wrong activated secret (403 TPM_ACTIVATION_FAILED), which spends the challenge', async () => {
      const before = await claimState(claimId);
      const started = await attest(station, await evidence(DEVICE_KEY, 'tpm-0003'));
      assert.equal(started.status, 201, started.text);
      await assertRefused(await activate(station, started.body.challengeId, randomBytes(32)), 403, 'TPM_ACTIVATION_FAILED', claimId, before);
      const secret = await tpm.activate(Buffer.from(started.body.credentialBlob, 'base64'));
      await assertRefused(await activate(station, started.body.challengeId, secret), 409, 'TPM_CHALLENGE_USED', claimId, before);
    });

    it('refuses an expired challenge (410 TPM_CHALLENGE_EXPIRED)', async () => {
      const before = await claimState(claimId);
      const started = await attest(station, await evidence(DEVICE_KEY, 'tpm-0004'));
      assert.equal(started.status, 201, started.text);
      const secret = await tpm.activate(Buffer.from(started.body.credentialBlob, 'base64'));
      clock.advance((t.config.tpm.challengeTtlSeconds + 1) * 1000);
      await assertRefused(await activate(station, started.body.challengeId, secret), 410, 'TPM_CHALLENGE_EXPIRED', claimId, before);
      // Expired challenges are pruned (docs/operations.md, "Pruning"); then the challenge is simply unknown.
      const pruned = await t.app.get(Pruner).pruneOnce();
      assert.ok(pruned.tpm_enrollment_challenges >= 1, JSON.stringify(pruned));
      await assertRefused(await activate(station, started.body.challengeId, secret), 404, 'TPM_CHALLENGE_NOT_FOUND', claimId, before);
    });

    it('refuses a CSR whose key is not the certified key (422 TPM_CSR_KEY_MISMATCH)', async () => {
      const before = await claimState(claimId);
      const other = ssl.newCsr('ec:P-256', '/CN=tpm-0005');
      await assertRefused(await attest(station, await evidence(DEVICE_KEY, 'tpm-0005', { csr: other.csrPem })), 422, 'TPM_CSR_KEY_MISMATCH', claimId, before);
    });

    it('refuses a certified key that is not fixedTPM (422 TPM_KEY_NOT_HARDWARE_BOUND)', async () => {
      const before = await claimState(claimId);
      await tpm.createKey(TEMP_KEY, 'sensitivedataorigin|userwithauth|sign');
      try {
        await assertRefused(await attest(station, await evidence(TEMP_KEY, 'tpm-0006')), 422, 'TPM_KEY_NOT_HARDWARE_BOUND', claimId, before);
      } finally {
        await tpm.evict(TEMP_KEY);
      }
    });

    it('refuses an AK that is not a restricted signing key (422 TPM_AK_NOT_RESTRICTED_SIGNING)', async () => {
      const before = await claimState(claimId);
      const plain = await tpm.createKey(PLAIN_SIGNER);
      try {
        const { certifyInfo, certifySignature } = await tpm.certify(DEVICE_KEY, PLAIN_SIGNER);
        const body = await evidence(DEVICE_KEY, 'tpm-0007', { akPublic: b64(plain), certifyInfo: b64(certifyInfo), certifySignature: b64(certifySignature) });
        await assertRefused(await attest(station, body), 422, 'TPM_AK_NOT_RESTRICTED_SIGNING', claimId, before);
      } finally {
        await tpm.evict(PLAIN_SIGNER);
      }
    });

    it('refuses an attestation whose signature does not verify (422 TPM_ATTESTATION_SIGNATURE_INVALID)', async () => {
      const before = await claimState(claimId);
      const body = await evidence(DEVICE_KEY, 'tpm-0008');
      const info = Buffer.from(body.certifyInfo, 'base64');
      info[info.length - 1] ^= 0x01; // one bit of the certified key's qualified name
      await assertRefused(await attest(station, { ...body, certifyInfo: b64(info) }), 422, 'TPM_ATTESTATION_SIGNATURE_INVALID', claimId, before);
      // A signature over another certify (an older one) does not cover this one either.
      const older = await tpm.certify(DEVICE_KEY);
      const mixed = { ...body, certifySignature: b64(older.certifySignature) };
      await assertRefused(await attest(station, mixed), 422, 'TPM_ATTESTATION_SIGNATURE_INVALID', claimId, before);
    });

    it('refuses an unknown challenge, and another claim’s (404 TPM_CHALLENGE_NOT_FOUND)', async () => {
      const before = await claimState(claimId);
      await assertRefused(await activate(station, '00000000-0000-4000-8000-000000000000', randomBytes(32)), 404, 'TPM_CHALLENGE_NOT_FOUND', claimId, before);
      const started = await attest(station, await evidence(DEVICE_KEY, 'tpm-0009'));
      const otherClaim = await newClaim('optional');
      await assertRefused(await activate(otherClaim.station, started.body.challengeId, randomBytes(32)), 404, 'TPM_CHALLENGE_NOT_FOUND', claimId, before);
    });
  });

  describe('must-show 2: the claim’s attestation requirement and its quota', () => {
    it('a claim that requires attestation refuses a plain exchange (403 ATTESTATION_REQUIRED, with the reason); one with attestation off refuses attested enrollment', async () => {
      const { claim, station } = await newClaim('tpm');
      const plain = ssl.newCsr('ec:P-256', '/CN=plain-0001');
      const res = await t.http().post('/v1/provisioning/exchange').set('Authorization', `Bearer ${token(station, '/v1/provisioning/exchange')}`).send({ deviceSerial: 'plain-0001', csr: plain.csrPem });
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'ATTESTATION_REQUIRED');
      assert.match(res.body.detail, /requires TPM attestation/);
      assert.deepEqual(await claimState(claim.id), { used: 0, issued: 0 });

      const off = await newClaim('off');
      const refused = await attest(off.station, await evidence(DEVICE_KEY, 'tpm-0101'));
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.body.code, 'ATTESTATION_NOT_ENABLED');
    });

    it('an EST label that requires attestation refuses EST enrollment (403 ATTESTATION_REQUIRED), which cannot carry it', async () => {
      const label = await admin('post', '/v1/est/labels', { label: 'tpm-only', kind: 'authority', authorityId: deviceCa.id, profile: 'device', attestation: 'tpm' });
      assert.equal(label.attestation, 'tpm');
      const csr = ssl.newCsr('ec:P-256', '/CN=est-tpm-0001');
      const res = await t.http().post('/.well-known/est/tpm-only/simpleenroll').set(bearer(t.adminKey))
        .set({ 'Content-Type': 'application/pkcs10', Accept: 'application/problem+json' })
        .send(csr.csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''));
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'ATTESTATION_REQUIRED');
      assert.match(res.body.detail, /EST label "tpm-only" requires TPM attestation/);
    });

    it('50 concurrent attested enrollments on a 10-device claim give exactly 10 certificates', async (ctx) => {
      const { claim, station } = await newClaim('tpm', 10);
      const phase = (() => {
        let last = performance.now();
        return (name: string) => {
          const now = performance.now();
          ctx.diagnostic(`${name}: ${Math.round(now - last)} ms`);
          last = now;
        };
      })();
      // The TPM work first (one TPM: 50 fresh keys, each certified by the AK and its CSR signed in the TPM) …
      const bodies: Record<string, string>[] = [];
      for (let i = 0; i < 50; i++) {
        await tpm.createKey(TEMP_KEY);
        bodies.push(await evidence(TEMP_KEY, `tpm-par-${String(i).padStart(2, '0')}`));
        await tpm.evict(TEMP_KEY);
      }
      phase('TPM: 50 keys created, certified by the AK, CSRs signed in the TPM');
      // … then the 50 attestations concurrently over HTTP …
      const started = await Promise.all(bodies.map((body) => attest(station, body)));
      phase('HTTP: 50 concurrent attestations (step 1)');
      for (const res of started) assert.equal(res.status, 201, res.text);
      // … the 50 activations, one at a time in the one TPM …
      const secrets: Buffer[] = [];
      for (const res of started) secrets.push(await tpm.activate(Buffer.from(res.body.credentialBlob, 'base64')));
      phase('TPM: 50 ActivateCredential, serialised');
      // … and the 50 answers concurrently.
      const answers = await Promise.all(started.map((res, i) => activate(station, res.body.challengeId, secrets[i])));
      phase('HTTP: 50 concurrent activations (step 2)');
      const statuses = answers.map((res) => res.status);
      assert.equal(statuses.filter((s) => s === 201).length, 10, JSON.stringify(statuses));
      for (const res of answers.filter((r) => r.status !== 201)) assert.equal(res.body.code, 'CLAIM_QUOTA_EXHAUSTED', res.text);
      assert.equal(new Set(answers.filter((r) => r.status === 201).map((r) => r.body.id)).size, 10);
      assert.deepEqual(await claimState(claim.id), { used: 10, issued: 10 });
    });
  });

  describe('must-show 4: renewal after expiry of a TPM-attested certificate', () => {
    const OLD_KEY = '0x81000003';
    const NEW_KEY = '0x81000004';
    let current: Body;

    /** A device token signed inside the TPM by the key at `handle` (ES256: the DER signature made raw r‖s). */
    async function deviceToken(handle: string, certificatePem: string): Promise<string> {
      const now = Math.floor(clock.now().getTime() / 1000);
      const der = new X509Certificate(certificatePem).raw;
      const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', x5c: [der.toString('base64')] })).toString('base64url');
      const payload = Buffer.from(JSON.stringify({ aud: `${t.config.publicBaseUrl}/v1/certificates/renew`, iat: now, exp: now + 120, jti: randomBytes(16).toString('hex') })).toString('base64url');
      const signature = derSignatureToRaw(await tpm.sign(handle, Buffer.from(`${header}.${payload}`, 'ascii')));
      return `${header}.${payload}.${signature.toString('base64url')}`;
    }

    async function renew(handle: string, body: object) {
      return t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${await deviceToken(handle, current.certificatePem)}`).send(body);
    }

    async function renewalEvidence(handle: string, serial: string): Promise<{ csr: string; tpm: Record<string, string> }> {
      const { certifyInfo, certifySignature } = await tpm.certify(handle);
      return {
        csr: await tpm.csr(handle, `/CN=${serial}`),
        tpm: { akPublic: b64(tpm.akPublic()), keyPublic: b64(await readPublic(handle)), certifyInfo: b64(certifyInfo), certifySignature: b64(certifySignature), ekCertificate: b64(ekCertDer) },
      };
    }

    before(async () => {
      const { station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 5, attestation: 'tpm', thingNameTemplate: '{serial}', validityDays: 1 });
      await tpm.createKey(OLD_KEY);
      const started = await attest(station, await evidence(OLD_KEY, 'tpm-renew-1'));
      assert.equal(started.status, 201, started.text);
      const issued = await activate(station, started.body.challengeId, await tpm.activate(Buffer.from(started.body.credentialBlob, 'base64')));
      assert.equal(issued.status, 201, issued.text);
      current = issued.body;
      await tpm.createKey(NEW_KEY);
      // The device was offline past its certificate's end: 2 days after issuance (1-day validity; 30 days allowed after expiry).
      clock.advance(2 * 86_400_000);
    });
    after(async () => {
      await tpm.evict(OLD_KEY).catch(() => undefined);
      await tpm.evict(NEW_KEY).catch(() => undefined);
    });

    it('refuses the renewal without the attestation (403 RENEWAL_ATTESTATION_REQUIRED, saying what is missing)', async () => {
      const { csr } = await renewalEvidence(NEW_KEY, 'tpm-renew-1');
      const res = await renew(OLD_KEY, { csr });
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'RENEWAL_ATTESTATION_REQUIRED');
      assert.match(res.body.detail, /after expiry needs "tpm".*TPM2_Certify of the new key by the AK/);
    });

    it('refuses an attestation by another AK or for another EK (403 RENEWAL_ATTESTATION_MISMATCH)', async () => {
      const body = await renewalEvidence(NEW_KEY, 'tpm-renew-1');
      const rogueEk = b64(fs.readFileSync(ssl.file('rogue-ek.der')));
      const res = await renew(OLD_KEY, { ...body, tpm: { ...body.tpm, ekCertificate: rogueEk } });
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.code, 'RENEWAL_ATTESTATION_MISMATCH');
    });

    it('accepts it with the same AK certifying the new TPM key: the new certificate carries the attestation forward', async () => {
      const res = await renew(OLD_KEY, await renewalEvidence(NEW_KEY, 'tpm-renew-1'));
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.replaces, current.id);
      assert.equal(res.body.hardwareAttestation.akName, current.hardwareAttestation.akName);
      assert.equal(res.body.hardwareAttestation.ekCertificateSha256, current.hardwareAttestation.ekCertificateSha256);
      assert.notEqual(res.body.hardwareAttestation.keyName, current.hardwareAttestation.keyName);
      // Checked at the app's (moved) time: the certificate starts days after the real clock.
      const at = String(Math.floor(clock.now().getTime() / 1000));
      const verified = ssl.run(['verify', '-x509_strict', '-attime', at, '-CAfile', ssl.file('root.pem', rootPem), '-untrusted', ssl.file('renewed-chain.pem', res.body.chainPem), ssl.file('renewed.pem', res.body.certificatePem)]);
      assert.equal(verified.status, 0, verified.output);
      const message = Buffer.from('renewed');
      assert.ok(verify('sha256', message, createPublicKey(res.body.certificatePem), await tpm.sign(NEW_KEY, message)));
      current = res.body;
    });

    it('refuses it outside the window, even with the attestation (403 CERTIFICATE_EXPIRED)', async () => {
      // 31 days past the renewed certificate's end (the profile's validity), one past the window.
      clock.advance(new Date(current.notAfter).getTime() + 31 * 86_400_000 - clock.now().getTime());
      await tpm.createKey(TEMP_KEY);
      try {
        const res = await renew(NEW_KEY, await renewalEvidence(TEMP_KEY, 'tpm-renew-1'));
        assert.equal(res.status, 403, res.text);
        assert.equal(res.body.code, 'CERTIFICATE_EXPIRED');
        assert.match(res.body.detail, /renews at most 30 days after expiry/);
      } finally {
        await tpm.evict(TEMP_KEY);
      }
    });
  });

  describe('manufacturer roots (admin)', () => {
    it('lists, refuses a duplicate and a non-CA, and removes a root (then its EKs are refused)', async () => {
      const list = await admin('get', '/v1/tpm/manufacturer-roots');
      assert.ok(list.items.some((r: { id: string }) => r.id === vendorRootId));
      const dup = await t.http().post('/v1/tpm/manufacturer-roots').set(bearer(t.adminKey)).send({ name: 'again', certificatePem: readText(ssl.file('vendor-ca.pem')) });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.code, 'TPM_ROOT_EXISTS');
      const leaf = await t.http().post('/v1/tpm/manufacturer-roots').set(bearer(t.adminKey)).send({ name: 'leaf', certificatePem: new X509Certificate(ekCertDer).toString() });
      assert.equal(leaf.status, 422);
      assert.equal(leaf.body.code, 'INVALID_TPM_ROOT');
      const rogue = await admin('post', '/v1/tpm/manufacturer-roots', { name: 'rogue', certificatePem: readText(ssl.file('rogue-ca.pem')) });
      await admin('delete', `/v1/tpm/manufacturer-roots/${rogue.id}`);
      const gone = await t.http().delete(`/v1/tpm/manufacturer-roots/${rogue.id}`).set(bearer(t.adminKey));
      assert.equal(gone.status, 404);
      assert.equal(gone.body.code, 'TPM_ROOT_NOT_FOUND');
    });
  });
});
