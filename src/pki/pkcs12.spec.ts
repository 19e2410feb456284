import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as pkijs from 'pkijs';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { pemEncode } from './der';
import { PKCS12_ITERATIONS, pkcs12, pkcs12MacKey, pkcs12PasswordProblem } from './pkcs12';

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());

type KeyKind = 'EC P-256' | 'EC P-384' | 'RSA 2048';
const KEY_ARGS: Record<KeyKind, string[]> = {
  'EC P-256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'EC P-384': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'RSA 2048': ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
};

interface Made {
  cert: string;
  key: string;
  der: Buffer;
  keyDer: Buffer;
}

/** A key and certificate made by openssl (self-signed, or signed by `issuer`). */
function opensslCertificate(name: string, kind: KeyKind, issuer?: Made): Made {
  const key = ssl.file(`${name}.key`, '');
  const cert = ssl.file(`${name}.pem`, '');
  const made = ssl.run(['genpkey', ...KEY_ARGS[kind], '-out', key]);
  assert.equal(made.status, 0, made.output);
  const args = issuer
    ? ['req', '-new', '-x509', '-key', key, '-subj', `/CN=${name}`, '-CA', issuer.cert, '-CAkey', issuer.key, '-days', '1', '-out', cert]
    : ['req', '-new', '-x509', '-key', key, '-subj', `/CN=${name}`, '-days', '1', '-out', cert];
  const signed = ssl.run(args);
  assert.equal(signed.status, 0, signed.output);
  return {
    cert,
    key,
    der: Buffer.from(new X509Certificate(readFileSync(cert)).raw),
    keyDer: createPrivateKey(readFileSync(key)).export({ format: 'der', type: 'pkcs8' }),
  };
}

const root = opensslCertificate('p12-root', 'EC P-256');
const intermediate = opensslCertificate('p12-intermediate', 'EC P-384', root);

/** `openssl pkcs12 -nodes` with OpenSSL 3's defaults (no -legacy). */
function openP12(p12: Buffer, password: string, extra: string[] = []): { status: number; output: string } {
  const file = ssl.file(`bundle-${randomBytes(4).toString('hex')}.p12`, p12);
  return ssl.run(['pkcs12', '-in', file, '-passin', `pass:${password}`, '-nodes', ...extra]);
}

function pemBlocks(text: string, label: string): string[] {
  return [...text.matchAll(new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----\\n?`, 'g'))].map((m) => m[0]);
}

function publicKeyOfKey(keyPem: string): string {
  const out = ssl.run(['pkey', '-in', ssl.file(`k-${randomBytes(4).toString('hex')}.pem`, keyPem), '-pubout']);
  assert.equal(out.status, 0, out.output);
  return out.output;
}

function publicKeyOfCertificate(certPem: string): string {
  const out = ssl.run(['x509', '-in', ssl.file(`c-${randomBytes(4).toString('hex')}.pem`, certPem), '-pubkey', '-noout']);
  assert.equal(out.status, 0, out.output);
  return out.output;
}

describe('PKCS #12 (pkijs, PBES2/AES-256-CBC, HMAC-SHA256)', () => {
  for (const kind of Object.keys(KEY_ARGS) as KeyKind[]) {
    it(`is opened by OpenSSL 3 without -legacy, with a ${kind} key that matches its certificate and the whole chain`, async () => {
      const leaf = opensslCertificate(`p12-leaf-${kind.replace(/\W/g, '')}`, kind, intermediate);
      const password = `correct horse ${kind}`;
      const p12 = await pkcs12({ privateKeyPkcs8Der: leaf.keyDer, certificateDer: leaf.der, chainDer: [intermediate.der, root.der], password });

      const opened = openP12(p12, password);
      assert.equal(opened.status, 0, opened.output);
      const [keyPem] = pemBlocks(opened.output, 'PRIVATE KEY');
      const certificates = pemBlocks(opened.output, 'CERTIFICATE');
      assert.ok(keyPem, opened.output);
      assert.equal(publicKeyOfKey(keyPem), publicKeyOfCertificate(pemEncode('CERTIFICATE', leaf.der)));
      // Every certificate, byte for byte, the leaf first.
      assert.deepEqual(certificates, [leaf.der, intermediate.der, root.der].map((der) => pemEncode('CERTIFICATE', der)));
      assert.deepEqual(
        pemBlocks(openP12(p12, password, ['-clcerts', '-nokeys']).output, 'CERTIFICATE'),
        [pemEncode('CERTIFICATE', leaf.der)],
        'the leaf is the certificate paired with the key (localKeyId)',
      );
    });
  }

  it('uses modern algorithms only, with the documented iteration count everywhere', async () => {
    const leaf = opensslCertificate('p12-info', 'EC P-256', intermediate);
    const p12 = await pkcs12({ privateKeyPkcs8Der: leaf.keyDer, certificateDer: leaf.der, chainDer: [intermediate.der, root.der], password: 'info-password' });
    const info = openP12(p12, 'info-password', ['-info', '-noout']);
    assert.equal(info.status, 0, info.output);
    assert.match(info.output, new RegExp(`MAC: sha256, Iteration ${PKCS12_ITERATIONS}`));
    const pbes2 = `PBES2, PBKDF2, AES-256-CBC, Iteration ${PKCS12_ITERATIONS}, PRF hmacWithSHA256`;
    assert.match(info.output, new RegExp(`PKCS7 Encrypted data: ${pbes2}`));
    assert.match(info.output, new RegExp(`Shrouded Keybag: ${pbes2}`));
    assert.doesNotMatch(info.output, /RC2|3DES|DES-EDE|pbeWithSHA1|sha1/i);
  });

  it('fails to open with a wrong password', async () => {
    const leaf = opensslCertificate('p12-wrong', 'EC P-256', intermediate);
    const p12 = await pkcs12({ privateKeyPkcs8Der: leaf.keyDer, certificateDer: leaf.der, chainDer: [intermediate.der], password: 'the-right-one' });
    const opened = openP12(p12, 'the-wrong-one');
    assert.notEqual(opened.status, 0);
    assert.match(opened.output, /mac verify (error|failure)/i);
    assert.doesNotMatch(opened.output, /BEGIN PRIVATE KEY/);
  });

  it('takes a non-ASCII password and a friendly name', async () => {
    const leaf = opensslCertificate('p12-unicode', 'EC P-256', intermediate);
    const password = 'pässwörd-日本-ü';
    const p12 = await pkcs12({ privateKeyPkcs8Der: leaf.keyDer, certificateDer: leaf.der, chainDer: [], password, friendlyName: 'claim 1234 (line 3)' });
    const opened = openP12(p12, password);
    assert.equal(opened.status, 0, opened.output);
    assert.match(opened.output, /friendlyName: claim 1234 \(line 3\)/);
    assert.equal(pemBlocks(opened.output, 'CERTIFICATE').length, 1);
  });

  it('derives the MAC key as pkijs’s own RFC 7292 KDF does', async () => {
    const stock = new pkijs.CryptoEngine({ name: 'stock', crypto: globalThis.crypto });
    for (const password of ['password1', 'pässwörd-日本-ü']) {
      const salt = randomBytes(64);
      const content = randomBytes(300);
      const expected = Buffer.from(
        await stock.stampDataWithPassword({ password: new TextEncoder().encode(password).buffer, hashAlgorithm: 'SHA-256', salt: new Uint8Array(salt).buffer, iterationCount: 1000, contentToStamp: new Uint8Array(content).buffer }),
      );
      const ours = createHmac('sha256', await pkcs12MacKey(password, salt, 1000)).update(content).digest();
      assert.equal(ours.toString('hex'), expected.toString('hex'));
    }
  });

  it('refuses a missing, short, long or control-character password, and a key that is not the certificate’s', async () => {
    assert.equal(pkcs12PasswordProblem(undefined), 'a password is required');
    assert.equal(pkcs12PasswordProblem(''), 'a password is required');
    assert.match(pkcs12PasswordProblem('short') ?? '', /at least 8/);
    assert.match(pkcs12PasswordProblem('x'.repeat(129)) ?? '', /at most 128/);
    assert.match(pkcs12PasswordProblem('tab\tinside') ?? '', /control characters/);
    assert.equal(pkcs12PasswordProblem('x'.repeat(128)), null);
    const leaf = opensslCertificate('p12-other', 'EC P-256', intermediate);
    await assert.rejects(pkcs12({ privateKeyPkcs8Der: leaf.keyDer, certificateDer: leaf.der, chainDer: [], password: 'short' }), /at least 8/);
    await assert.rejects(pkcs12({ privateKeyPkcs8Der: root.keyDer, certificateDer: leaf.der, chainDer: [], password: 'long enough' }), /does not belong/);
  });
});
