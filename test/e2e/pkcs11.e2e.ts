import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { DataSource } from 'typeorm';
import { IotStandIn, KmsStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { hasPkcs11Tool, SoftHsm, SoftHsmToken, softHsmModule } from '../support/softhsm';
import { bearer, binaryBody, drivers, startTestApp, TestApp } from '../support/test-app';

const hsm = softHsmModule();
const softhsm = hsm.module ? new SoftHsm(hsm.module) : undefined;
const MAIN = path.resolve(__dirname, '../../src/main.js');

/**
 * The test's own handle on the module SoftHSM2 loaded in this process (dlopen gives the same library, and Cryptoki is
 * already initialised by the service): what the test does to the token, it does to the service's token. Never
 * finalised here (that would end the service's Cryptoki too).
 */
function sameModule(): pkcs11js.PKCS11 {
  const p11 = new pkcs11js.PKCS11();
  p11.load(hsm.module as string);
  try {
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test((err as Error).message)) throw err;
  }
  return p11;
}

function slotOf(p11: pkcs11js.PKCS11, label: string): Buffer {
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.replace(/\0/g, '').trim() === label);
  assert.ok(slot, `token ${label} not found`);
  return slot;
}

/** A logged-in read-write session of the test's own on the token. */
function testSession(p11: pkcs11js.PKCS11, token: SoftHsmToken): Buffer {
  const session = p11.C_OpenSession(slotOf(p11, token.label), pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, token.pin);
  } catch (err) {
    if (!/CKR_USER_ALREADY_LOGGED_IN/.test((err as Error).message)) throw err;
  }
  return session;
}

/**
 * Puts a P-256 key whose private value the test knows onto the token (C_CreateObject), private key sensitive or not
 * as asked, with its public key object beside it. Returns the private scalar, for the search of the database.
 */
function importEcKey(token: SoftHsmToken, label: string, opts: { extractable: boolean }): { d: Buffer; pkcs8: Buffer; id: Buffer } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const d = Buffer.from(jwk.d as string, 'base64url');
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x as string, 'base64url'), Buffer.from(jwk.y as string, 'base64url')]);
  const params = Buffer.from('06082a8648ce3d030107', 'hex');
  const id = randomBytes(8);
  const p11 = sameModule();
  const session = testSession(p11, token);
  try {
    const c = pkcs11js;
    p11.C_CreateObject(session, [
      { type: c.CKA_CLASS, value: c.CKO_PRIVATE_KEY },
      { type: c.CKA_KEY_TYPE, value: c.CKK_EC },
      { type: c.CKA_TOKEN, value: true },
      { type: c.CKA_PRIVATE, value: true },
      { type: c.CKA_SENSITIVE, value: !opts.extractable },
      { type: c.CKA_EXTRACTABLE, value: opts.extractable },
      { type: c.CKA_SIGN, value: true },
      { type: c.CKA_LABEL, value: label },
      { type: c.CKA_ID, value: id },
      { type: c.CKA_EC_PARAMS, value: params },
      { type: c.CKA_VALUE, value: d },
    ]);
    p11.C_CreateObject(session, [
      { type: c.CKA_CLASS, value: c.CKO_PUBLIC_KEY },
      { type: c.CKA_KEY_TYPE, value: c.CKK_EC },
      { type: c.CKA_TOKEN, value: true },
      { type: c.CKA_VERIFY, value: true },
      { type: c.CKA_LABEL, value: label },
      { type: c.CKA_ID, value: id },
      { type: c.CKA_EC_PARAMS, value: params },
      { type: c.CKA_EC_POINT, value: Buffer.concat([Buffer.from([4, point.length]), point]) },
    ]);
  } finally {
    p11.C_CloseSession(session);
  }
  return { d, pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }), id };
}

/** Every text value of every row of every table. */
async function allStoredValues(db: DataSource): Promise<string> {
  const values: string[] = [];
  for (const entity of db.entityMetadatas) {
    for (const row of await db.query(`SELECT * FROM ${db.driver.escape(entity.tableName)}`)) {
      for (const value of Object.values(row as Record<string, unknown>)) if (value !== null) values.push(Buffer.isBuffer(value) ? value.toString('latin1') : String(value));
    }
  }
  return values.join('\n');
}

/** Every byte of every file under dir, as latin1 (SQLite's file and WAL included when the data dir holds them). */
function allFiles(dir: string): string {
  const parts: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(fs.readFileSync(path.join(entry.parentPath, entry.name)).toString('latin1'));
  }
  return parts.join('\n');
}

function encodings(secret: Buffer): string[] {
  return [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url'), secret.toString('latin1')];
}

async function createCa(t: TestApp, body: Record<string, unknown>): Promise<{ id: string; certificatePem: string; chainPem: string; pkcs11KeyUri: string | null; keySpec: string }> {
  const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ subject: { commonName: String(body.name) }, ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function crlDer(t: TestApp, id: string): Promise<Buffer> {
  const res = await t.http().get(`/v1/authorities/${id}/crl`).buffer(true).parse(binaryBody);
  assert.equal(res.status, 200);
  return res.body as Buffer;
}

for (const { driver, skip } of drivers()) {
  describe(`pkcs11 key backend (SoftHSM2) on ${driver}`, { skip: hsm.skip || skip }, () => {
    let t: TestApp;
    let kms: KmsStandIn;
    let iot: IotStandIn;
    let token: SoftHsmToken;
    let ssl: OpenSslWorkspace;
    let root: Awaited<ReturnType<typeof createCa>>;
    let intermediate: Awaited<ReturnType<typeof createCa>>;

    before(async () => {
      token = softhsm!.initToken(`fleet-${driver}`);
      kms = await new KmsStandIn().start();
      iot = await new IotStandIn().start();
      ssl = new OpenSslWorkspace();
      t = await startTestApp(driver, {
        kms,
        iot,
        env: { PKCS11_MODULE: hsm.module as string, PKCS11_TOKEN_LABEL: token.label, PKCS11_PIN_FILE: softhsm!.pinFile(token), PKCS11_SESSIONS: '4' },
      });
      root = await createCa(t, { name: 'HSM Root', type: 'root', keyBackend: 'pkcs11', keySpec: 'EC_P384' });
      intermediate = await createCa(t, { name: 'HSM Issuing', type: 'intermediate', parentId: root.id, keyBackend: 'pkcs11', keySpec: 'RSA_2048' });
    });
    after(async () => {
      await t?.close();
      await kms?.stop();
      await iot?.stop();
      ssl?.cleanup();
    });

    it('a root and an intermediate on the token issue device certificates that openssl verify -x509_strict accepts; their CRLs verify', async () => {
      assert.match(root.pkcs11KeyUri ?? '', new RegExp(`^pkcs11:token=fleet-${driver};id=[0-9a-f]{32}$`));
      const issued = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
        authorityId: intermediate.id,
        csr: ssl.newCsr('ec:P-256', '/CN=hsm-device-1').csrPem,
        profile: 'device',
        thingName: 'hsm-device-1',
      });
      assert.equal(issued.status, 201, JSON.stringify(issued.body));
      const verified = ssl.verify({ rootPem: root.certificatePem, intermediatesPem: intermediate.certificatePem, leafPem: issued.body.certificatePem });
      assert.ok(verified.ok, verified.output);
      assert.match(ssl.text(intermediate.certificatePem), /Signature Algorithm: ecdsa-with-SHA384/);
      assert.match(ssl.text(issued.body.certificatePem), /Signature Algorithm: sha256WithRSAEncryption/);

      const revoked = await t.http().post(`/v1/certificates/${issued.body.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(revoked.status, 200);
      for (const [ca, crl] of [
        [intermediate, await crlDer(t, intermediate.id)],
        [root, await crlDer(t, root.id)],
      ] as const) {
        const crlFile = ssl.file(`crl-${ca.id}.der`, crl);
        const out = ssl.run(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-verify', '-CAfile', ssl.file(`ca-${ca.id}.pem`, ca.certificatePem)]);
        assert.equal(out.status, 0, out.output);
        assert.match(out.output, /verify OK/);
      }
      const withCrls = ssl.verify({
        rootPem: root.certificatePem,
        intermediatesPem: intermediate.certificatePem,
        leafPem: issued.body.certificatePem,
        crlsDer: [await crlDer(t, intermediate.id), await crlDer(t, root.id)],
      });
      assert.ok(!withCrls.ok);
      assert.match(withCrls.output, /certificate revoked/);
    });

    it('pkcs11-tool --list-objects shows the CA private keys sensitive and never extractable', { skip: hasPkcs11Tool() ? false : 'pkcs11-tool (opensc) is not installed' }, () => {
      const listed = softhsm!.pkcs11Tool(['--token-label', token.label, '--login', '--pin', token.pin, '--list-objects', '--type', 'privkey']);
      assert.equal(listed.status, 0, listed.output);
      for (const ca of [root, intermediate]) {
        const id = /id=([0-9a-f]+)$/.exec(ca.pkcs11KeyUri ?? '')![1];
        const object = listed.output.split(/\n(?=Private Key Object)/).find((block) => new RegExp(`ID:\\s+${id}`).test(block));
        assert.ok(object, `no private key object with ID ${id} in:\n${listed.output}`);
        assert.match(object, /label:\s+fleet-pki:/);
        const access = /Access:\s+(.*)/.exec(object)![1];
        assert.match(access, /(^|, )sensitive/, access);
        assert.match(access, /never extractable/, access);
        assert.doesNotMatch(access.replace(/never extractable/g, ''), /extractable/, access);
      }
    });

    it('adopts a token key by label; its private value is nowhere in the database or the data directory, nor is the PIN', async () => {
      const imported = importEcKey(token, `imported-${driver}`, { extractable: false });
      const adopted = await createCa(t, { name: 'Adopted Root', type: 'root', keyBackend: 'pkcs11', pkcs11KeyLabel: `imported-${driver}`, keySpec: 'EC_P256' });
      assert.equal(adopted.pkcs11KeyUri, `pkcs11:token=fleet-${driver};id=${imported.id.toString('hex')}`);
      const underAdopted = await createCa(t, { name: 'Under Adopted', type: 'intermediate', parentId: adopted.id, keyBackend: 'pkcs11' });
      const verified = ssl.verify({ rootPem: adopted.certificatePem, leafPem: underAdopted.certificatePem });
      assert.ok(verified.ok, verified.output);

      const db = t.app.get(DataSource);
      // The rows, the data directory, and on SQLite the database file's directory (file, WAL) byte for byte.
      const dbDir = t.db.config.driver === 'sqlite' ? allFiles(path.dirname(t.db.config.file)) : '';
      const haystack = (await allStoredValues(db)) + allFiles(t.config.dataDir) + dbDir;
      for (const needle of [...encodings(imported.d), ...encodings(imported.pkcs8)]) assert.ok(!haystack.includes(needle), 'the token key was written to the database or data directory');
      assert.ok(!haystack.includes(token.pin), 'the PIN was written to the database or data directory');
      // The local key store holds nothing for token keys: they are references only.
      assert.equal((await db.query('SELECT id FROM local_keys')).length, 0);
      for (const row of (await db.query(`SELECT key_ref FROM authorities WHERE key_backend = 'pkcs11'`)) as { key_ref: string }[]) {
        assert.match(row.key_ref, /^pkcs11:token=[^;]+;id=[0-9a-f]+$/);
      }
    });

    it('refuses to adopt a missing or extractable token key (422), and pkcs11 key options on another backend (400)', async () => {
      const missing = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'x', type: 'root', keyBackend: 'pkcs11', pkcs11KeyLabel: 'no-such-key', subject: { commonName: 'x' } });
      assert.equal(missing.status, 422);
      assert.equal(missing.body.code, 'PKCS11_KEY_NOT_SUITABLE');
      assert.match(missing.body.detail, /no private key with label "no-such-key"/);
      importEcKey(token, `extractable-${driver}`, { extractable: true });
      const extractable = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'x', type: 'root', keyBackend: 'pkcs11', pkcs11KeyLabel: `extractable-${driver}`, subject: { commonName: 'x' } });
      assert.equal(extractable.status, 422);
      assert.equal(extractable.body.code, 'PKCS11_KEY_NOT_SUITABLE');
      assert.match(extractable.body.detail, /extractable/);
      const wrongBackend = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'x', type: 'root', keyBackend: 'local', pkcs11KeyId: 'abcd', subject: { commonName: 'x' } });
      assert.equal(wrongBackend.status, 400);
    });

    it('recovers when every session of the token is closed under load: 201 with a durable certificate or 503 problem+json, then issues again', async () => {
      const p11 = sameModule();
      const slot = slotOf(p11, token.label);
      const csrs = Array.from({ length: 6 }, (_, i) => ssl.newCsr('ec:P-256', `/CN=load-${i}`).csrPem);
      const results: { status: number; body: { id?: string; code?: string }; type: string }[] = [];
      let logouts = 0;
      let closes = 0;
      // Two ways the service's token state is taken from under it, both by the real module in this process:
      // - during each batch, C_Logout every 15 ms on a session of the test's own: Cryptoki logs the whole application
      //   out, so the service's next C_SignInit answers CKR_USER_NOT_LOGGED_IN;
      // - between batches, C_CloseAllSessions on the slot: every session the service holds dies
      //   (CKR_SESSION_HANDLE_INVALID on its next call). Not during a batch: SoftHSM2 frees a session that another
      //   thread is signing in (use-after-free, the process crashes), which no real token loss does.
      for (let round = 0; round < 10; round++) {
        const own = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
        const logout = setInterval(() => {
          try {
            p11.C_Logout(own);
            logouts++;
          } catch (err) {
            // Already logged out (the service has not logged in again yet).
            if (!/CKR_USER_NOT_LOGGED_IN/.test((err as Error).message)) throw err;
          }
        }, 15);
        try {
          const batch = await Promise.all(
            csrs.map((csr, i) =>
              t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: intermediate.id, csr, profile: 'device', thingName: `load-${round}-${i}` }),
            ),
          );
          for (const res of batch) results.push({ status: res.status, body: res.body, type: String(res.headers['content-type']) });
        } finally {
          clearInterval(logout);
        }
        p11.C_CloseAllSessions(slot);
        closes++;
      }
      assert.ok(logouts > 3, `logged out ${logouts} times`);
      const created = results.filter((r) => r.status === 201);
      const failed = results.filter((r) => r.status !== 201);
      for (const r of failed) {
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.match(r.type, /application\/problem\+json/);
        assert.equal(r.body.code, 'KEY_BACKEND_UNAVAILABLE');
      }
      // Every 201 names a certificate that is stored.
      for (const r of created) {
        const stored = await t.http().get(`/v1/certificates/${r.body.id}`).set(bearer(t.adminKey));
        assert.equal(stored.status, 200);
      }
      const listed = await t.http().get(`/v1/certificates?authorityId=${intermediate.id}&limit=200`).set(bearer(t.adminKey));
      assert.equal(listed.body.items.filter((c: { thingName: string }) => /^load-/.test(c.thingName)).length, created.length);
      console.log(`token state lost under load: ${logouts} × C_Logout, ${closes} × C_CloseAllSessions; ${created.length} × 201, ${failed.length} × 503`);
      // No restart: the next issuance signs on a new session.
      const after = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: intermediate.id, csr: csrs[0], profile: 'device', thingName: 'after-loss' });
      assert.equal(after.status, 201, JSON.stringify(after.body));
      const ready = await t.http().get('/readyz');
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      const setup = await t.http().get('/v1/setup/check').set(bearer(t.adminKey));
      const tokenCheck = (setup.body.checks as { name: string; status: string; detail: string }[]).find((c) => c.name === 'key-backend:pkcs11');
      assert.equal(tokenCheck?.status, 'ok', JSON.stringify(tokenCheck));

      // A loss it cannot recover from yet: logged out while the PIN file holds a PIN the token refuses (it is read at
      // each login). The request gets 503 problem+json naming the setting, and no certificate is stored; with the
      // right PIN back the next request logs in again and gets its 201, without a restart.
      const pinFile = softhsm!.pinFile(token);
      fs.writeFileSync(pinFile, 'not-the-pin-0000\n');
      const own = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      p11.C_Logout(own);
      const refused = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: intermediate.id, csr: csrs[1], profile: 'device', thingName: 'while-refused' });
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.match(String(refused.headers['content-type']), /application\/problem\+json/);
      assert.equal(refused.body.code, 'KEY_BACKEND_UNAVAILABLE');
      assert.match(refused.body.detail, /refused the PIN \(CKR_PIN_INCORRECT\): check PKCS11_PIN \/ PKCS11_PIN_FILE/);
      assert.ok(!JSON.stringify(refused.body).includes('not-the-pin-0000'));
      const none = await t.http().get(`/v1/certificates?thingName=while-refused`).set(bearer(t.adminKey));
      assert.equal(none.body.items.length, 0);
      softhsm!.pinFile(token);
      const back = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: intermediate.id, csr: csrs[1], profile: 'device', thingName: 'pin-back' });
      assert.equal(back.status, 201, JSON.stringify(back.body));
    });

    it('the token certifies the OCSP delegated signer (openssl ocsp verifies the answer) and signs the AWS IoT verification certificate', async () => {
      const device = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: intermediate.id, csr: ssl.newCsr('ec:P-256', '/CN=ocsp-device').csrPem, profile: 'device', thingName: 'ocsp-device' });
      assert.equal(device.status, 201, JSON.stringify(device.body));
      const asked = await new Promise<{ status: number; output: string }>((resolve) => {
        const args = ['ocsp', '-issuer', ssl.file('ocsp-issuer.pem', intermediate.certificatePem), '-cert', ssl.file('ocsp-leaf.pem', device.body.certificatePem), '-url', `${t.baseUrl}/ocsp`, '-CAfile', ssl.file('ocsp-chain.pem', device.body.chainPem)];
        // Asynchronous: the service answering runs in this process.
        execFile('openssl', args, { cwd: ssl.dir }, (err, stdout, stderr) => resolve({ status: err ? -1 : 0, output: `${stdout}${stderr}` }));
      });
      assert.equal(asked.status, 0, asked.output);
      assert.match(asked.output, /Response verify OK/);
      assert.match(asked.output, /ocsp-leaf\.pem: good/);

      // DEFAULT mode: AWS IoT wants a verification certificate signed by the CA key, here on the token.
      const registered = await t.http().post(`/v1/authorities/${intermediate.id}/iot-registration`).set(bearer(t.adminKey)).send({ certificateMode: 'DEFAULT' });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      const ca = (await t.http().get(`/v1/authorities/${intermediate.id}`).set(bearer(t.adminKey))).body;
      assert.equal(iot.caCertificate(ca.fingerprint)?.status, 'ACTIVE');
    });

    it('key ceremony: an offline root on the token signs an intermediate and a CRL only inside an audited signing window', async () => {
      const offlineRoot = await createCa(t, { name: 'Ceremony Root', type: 'root', keyBackend: 'pkcs11', keySpec: 'EC_P384', offline: true, validityDays: 7300 });
      // Only its certificate leaves: the public download (DER), as relying parties and AWS IoT get it.
      const exported = await t.http().get(`/v1/authorities/${offlineRoot.id}/certificate`).buffer(true).parse(binaryBody);
      assert.equal(exported.status, 200);
      assert.equal(exported.headers['content-type'], 'application/pkix-cert');
      const intermediateBody = { name: 'Ceremony Issuing', type: 'intermediate', parentId: offlineRoot.id, keyBackend: 'pkcs11', subject: { commonName: 'Ceremony Issuing' } };
      const refused = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send(intermediateBody);
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'AUTHORITY_OFFLINE');
      const crlRefused = await t.http().get(`/v1/authorities/${offlineRoot.id}/crl`);
      assert.equal(crlRefused.status, 409);
      assert.equal(crlRefused.body.code, 'AUTHORITY_OFFLINE');

      const opened = await t.http().post(`/v1/authorities/${offlineRoot.id}/signing-window`).set(bearer(t.adminKey)).send({ minutes: 15, reason: 'ceremony CHG-42' });
      assert.equal(opened.status, 200, JSON.stringify(opened.body));
      assert.ok(new Date(opened.body.signingEnabledUntil).getTime() > Date.now() + 14 * 60_000);
      const signed = await createCa(t, intermediateBody);
      const crl = await crlDer(t, offlineRoot.id);
      const closed = await t.http().post(`/v1/authorities/${offlineRoot.id}/signing-window/close`).set(bearer(t.adminKey)).send();
      assert.equal(closed.status, 200);
      assert.equal(closed.body.signingEnabledUntil, null);

      const again = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ ...intermediateBody, name: 'After Close' });
      assert.equal(again.status, 409);
      assert.equal(again.body.code, 'AUTHORITY_OFFLINE');
      // The CRL signed in the window is still served once it closed.
      assert.deepEqual(await crlDer(t, offlineRoot.id), crl);
      const crlCheck = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('offline-root.crl', crl), '-noout', '-verify', '-CAfile', ssl.file('offline-root.pem', offlineRoot.certificatePem)]);
      assert.match(crlCheck.output, /verify OK/);
      // The intermediate signed in the window issues devices as usual (it is online).
      const device = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: signed.id, csr: ssl.newCsr('ec:P-256', '/CN=ceremony-device').csrPem, profile: 'device', thingName: 'ceremony-device' });
      assert.equal(device.status, 201, JSON.stringify(device.body));
      const verified = ssl.verify({ rootPem: offlineRoot.certificatePem, intermediatesPem: signed.certificatePem, leafPem: device.body.certificatePem });
      assert.ok(verified.ok, verified.output);

      const audit = await t.http().get(`/v1/audit?targetId=${offlineRoot.id}`).set(bearer(t.adminKey));
      const events = (audit.body.items as { action: string; target: { id: string }; details: Record<string, unknown> }[]).filter((e) => e.target?.id === offlineRoot.id);
      const enabled = events.find((e) => e.action === 'authority.signing_enabled');
      assert.ok(enabled, JSON.stringify(events.map((e) => e.action)));
      assert.equal(enabled.details.reason, 'ceremony CHG-42');
      assert.ok(events.some((e) => e.action === 'authority.signing_disabled'));
      // A window is for offline roots only.
      const notOffline = await t.http().post(`/v1/authorities/${root.id}/signing-window`).set(bearer(t.adminKey)).send({ minutes: 5, reason: 'x' });
      assert.equal(notOffline.status, 409);
      assert.equal(notOffline.body.code, 'AUTHORITY_NOT_OFFLINE');
    });

    it('issues side by side from local, aws-kms (stand-in) and pkcs11 authorities in one service', async () => {
      const localRoot = await createCa(t, { name: 'Local Root', type: 'root', keyBackend: 'local' });
      const cas = [
        await createCa(t, { name: 'Local Issuing', type: 'intermediate', parentId: localRoot.id, keyBackend: 'local' }),
        await createCa(t, { name: 'KMS Issuing', type: 'intermediate', parentId: localRoot.id, keyBackend: 'aws-kms' }),
        await createCa(t, { name: 'Token Issuing', type: 'intermediate', parentId: localRoot.id, keyBackend: 'pkcs11', keySpec: 'EC_P256' }),
      ];
      const issued = await Promise.all(
        cas.flatMap((ca) =>
          [0, 1, 2].map((i) =>
            t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: ca.id, csr: ssl.newCsr('ec:P-256', `/CN=mixed-${i}`).csrPem, profile: 'device', thingName: `mixed-${ca.id.slice(0, 8)}-${i}` }),
          ),
        ),
      );
      issued.forEach((res, n) => {
        assert.equal(res.status, 201, JSON.stringify(res.body));
        const ca = cas[Math.floor(n / 3)];
        const verified = ssl.verify({ rootPem: localRoot.certificatePem, intermediatesPem: ca.certificatePem, leafPem: res.body.certificatePem });
        assert.ok(verified.ok, verified.output);
      });
      const backends = await Promise.all(cas.map(async (ca) => (await t.http().get(`/v1/authorities/${ca.id}`).set(bearer(t.adminKey))).body.keyBackend));
      assert.deepEqual(backends, ['local', 'aws-kms', 'pkcs11']);
    });
  });
}

/** The service as operators start it (`node dist/src/main.js`), expected to refuse: exit status and output. */
function startRefused(env: Record<string, string>): { status: number | null; output: string } {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-pkcs11-start-'));
  try {
    const result = spawnSync(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, HOME: dataDir, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', SOFTHSM2_CONF: softhsm?.conf, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('pkcs11 settings the service refuses at start', { skip: hsm.skip }, () => {
  let token: SoftHsmToken;
  before(() => {
    token = softhsm!.initToken('fleet-startup');
  });

  it('a wrong PIN: exit 78 naming PKCS11_PIN, without the PIN', () => {
    const wrong = `${token.pin.slice(0, -4)}0000`;
    const started = startRefused({ PKCS11_MODULE: hsm.module as string, PKCS11_TOKEN_LABEL: token.label, PKCS11_PIN: wrong });
    assert.equal(started.status, 78, started.output);
    assert.match(started.output, /Invalid configuration: PKCS11_PIN was refused by token "fleet-startup" \(CKR_PIN_INCORRECT\)/);
    assert.ok(!started.output.includes(wrong) && !started.output.includes(token.pin));
  });

  it('an unknown token label: exit 78 naming PKCS11_TOKEN_LABEL and the tokens present', () => {
    const started = startRefused({ PKCS11_MODULE: hsm.module as string, PKCS11_TOKEN_LABEL: 'no-such-token', PKCS11_PIN_FILE: softhsm!.pinFile(token) });
    assert.equal(started.status, 78, started.output);
    assert.match(started.output, /PKCS11_TOKEN_LABEL names no token .*"no-such-token" \(tokens present: .*"fleet-startup"/);
  });

  it('a missing module, or a file that is no PKCS #11 module: exit 78 naming PKCS11_MODULE', () => {
    const missing = startRefused({ PKCS11_MODULE: '/usr/lib/no-such-pkcs11.so', PKCS11_TOKEN_LABEL: token.label, PKCS11_PIN: token.pin });
    assert.equal(missing.status, 78, missing.output);
    assert.match(missing.output, /Invalid configuration: PKCS11_MODULE names no file: "\/usr\/lib\/no-such-pkcs11.so"/);
    const notAModule = startRefused({ PKCS11_MODULE: '/etc/hostname', PKCS11_TOKEN_LABEL: token.label, PKCS11_PIN: token.pin });
    assert.equal(notAModule.status, 78, notAModule.output);
    assert.match(notAModule.output, /Invalid configuration: PKCS11_MODULE cannot be loaded as a PKCS #11 module: "\/etc\/hostname"/);
    assert.ok(!missing.output.includes(token.pin) && !notAModule.output.includes(token.pin));
  });

  it('the PKCS #11 settings without PKCS11_MODULE: exit 78 naming it', () => {
    const started = startRefused({ PKCS11_TOKEN_LABEL: token.label });
    assert.equal(started.status, 78, started.output);
    assert.match(started.output, /PKCS11_MODULE must be set when PKCS11_TOKEN_LABEL is/);
  });
});
