import assert from 'node:assert/strict';
import { createDecipheriv, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { KmsStandIn } from '../../tools/standins';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

const PRIVATE_KEY_MARKERS = [/PRIVATE KEY/, /BEGIN RSA/, /BEGIN EC /, /MIIE[vw]/, /MIG[HT]AgEA/, /MIGkAgEB/, /MHcCAQEE/];

/** Every text value of every row of every table: the haystack the key material must not be in. */
async function allStoredValues(db: DataSource): Promise<string[]> {
  const values: string[] = [];
  for (const entity of db.entityMetadatas) {
    for (const row of await db.query(`SELECT * FROM ${db.driver.escape(entity.tableName)}`)) {
      for (const value of Object.values(row as Record<string, unknown>)) if (value !== null) values.push(String(value));
    }
  }
  return values;
}

/** The forms a leaked key could take in a text column: raw bytes as hex or base64, or the DER itself. */
function encodings(secret: Buffer): string[] {
  return [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url'), secret.toString('latin1')];
}

for (const { driver, skip } of drivers()) {
  describe(`key material at rest on ${driver}`, { skip }, () => {
    let kms: KmsStandIn;
    let t: TestApp;
    let db: DataSource;
    const cas: { id: string; keyBackend: string; keySpec: string }[] = [];

    before(async () => {
      kms = await new KmsStandIn().start();
      t = await startTestApp(driver, { kms });
      db = t.app.get(DataSource);
      for (const [keyBackend, keySpec] of [['aws-kms', 'EC_P256'], ['aws-kms', 'RSA_2048'], ['local', 'EC_P384'], ['local', 'RSA_2048']]) {
        const res = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
          name: `${keyBackend} ${keySpec}`,
          type: 'root',
          keyBackend,
          keySpec,
          subject: { commonName: `${keyBackend} ${keySpec}` },
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        cas.push(res.body);
      }
    });
    after(async () => {
      await t?.close();
      await kms?.stop();
    });

    it('holds no private key material of KMS-backed CAs, in any form, in any row', async () => {
      const haystack = (await allStoredValues(db)).join('\n');
      assert.equal(kms.keyIds().length, 2);
      for (const keyId of kms.keyIds()) {
        const { pkcs8, secret } = kms.exportPrivateKey(keyId);
        for (const needle of [...encodings(pkcs8), ...encodings(secret)]) assert.ok(!haystack.includes(needle), `KMS key ${keyId} leaked`);
      }
    });

    it('holds local CA keys only as AES-256-GCM ciphertext that decrypts, with the master key, to the key', async () => {
      const values = await allStoredValues(db);
      const haystack = values.join('\n');
      for (const marker of PRIVATE_KEY_MARKERS) assert.doesNotMatch(haystack, marker);

      const masterKey = t.config.keys.masterKey ?? Buffer.from(fs.readFileSync(path.join(t.config.dataDir, 'master.key'), 'utf8').trim(), 'hex');
      const rows: { id: string; ciphertext: string }[] = await db.query('SELECT id, ciphertext FROM local_keys');
      assert.equal(rows.length, 2);
      for (const row of rows) {
        const sealed = Buffer.from(row.ciphertext, 'base64');
        const decipher = createDecipheriv('aes-256-gcm', masterKey, sealed.subarray(0, 12));
        decipher.setAAD(Buffer.from(row.id));
        decipher.setAuthTag(sealed.subarray(12, 28));
        const pkcs8 = Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
        const secret = Buffer.from(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d!, 'base64url');
        // The plaintext key appears nowhere: not as PKCS #8, not as the raw private scalar/exponent.
        for (const needle of [...encodings(pkcs8), ...encodings(secret)]) assert.ok(!haystack.includes(needle), 'local key stored in clear');
      }
    });

    it('records KMS authorities by key ARN only', async () => {
      const rows: { key_backend: string; key_ref: string }[] = await db.query('SELECT key_backend, key_ref FROM authorities');
      for (const row of rows.filter((r) => r.key_backend === 'aws-kms')) {
        assert.match(row.key_ref, /^arn:aws:kms:us-east-1:111122223333:key\/[0-9a-f-]{36}$/);
      }
    });
  });
}
