import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KEY_SPECS } from '../../src/keys/key-spec';
import { KmsStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, startTestApp, TestApp } from '../support/test-app';

const SIGNATURE: Record<string, RegExp> = {
  EC_P256: /Signature Algorithm: ecdsa-with-SHA256/,
  EC_P384: /Signature Algorithm: ecdsa-with-SHA384/,
  RSA_2048: /Signature Algorithm: sha256WithRSAEncryption/,
  RSA_3072: /Signature Algorithm: sha256WithRSAEncryption/,
  RSA_4096: /Signature Algorithm: sha256WithRSAEncryption/,
};

/** Every key spec, on both backends: a CA on it issues a certificate that openssl verifies strictly. */
for (const backend of ['aws-kms', 'local'] as const) {
  describe(`CA key specs on ${backend}`, () => {
    let kms: KmsStandIn;
    let t: TestApp;
    const ssl = new OpenSslWorkspace();
    before(async () => {
      kms = await new KmsStandIn().start();
      t = await startTestApp('sqlite', { kms });
    });
    after(async () => {
      await t?.close();
      await kms?.stop();
      ssl.cleanup();
    });

    for (const keySpec of KEY_SPECS) {
      it(`issues from a ${keySpec} CA a certificate that openssl verify -x509_strict accepts`, async () => {
        const ca = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
          name: `${keySpec} root`,
          type: 'root',
          // The leaf is signed by this key spec directly, so openssl checks that very signature.
          allowLeafIssuance: true,
          keyBackend: backend,
          keySpec,
          subject: { commonName: `${keySpec} Root CA` },
        });
        assert.equal(ca.status, 201, JSON.stringify(ca.body));
        assert.equal(ca.body.keySpec, keySpec);
        const device = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
          authorityId: ca.body.id,
          csr: ssl.newCsr('ec:P-256', `/CN=${keySpec.toLowerCase()}-device`).csrPem,
          profile: 'device',
        });
        assert.equal(device.status, 201, JSON.stringify(device.body));
        const verified = ssl.verify({ rootPem: ca.body.certificatePem, leafPem: device.body.certificatePem });
        assert.ok(verified.ok, verified.output);
        assert.match(ssl.text(device.body.certificatePem), SIGNATURE[keySpec]);
        assert.match(ssl.text(ca.body.certificatePem), SIGNATURE[keySpec]);
      });
    }
  });
}
