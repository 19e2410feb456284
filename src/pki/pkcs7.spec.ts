import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { certificatesOfPkcs7, certsOnlyPkcs7 } from './pkcs7';

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());

function opensslCertificate(name: string, issuer?: { cert: string; key: string }): { cert: string; key: string; der: Buffer } {
  const key = ssl.file(`${name}.key`, '');
  const cert = ssl.file(`${name}.pem`, '');
  assert.equal(ssl.run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status, 0);
  const args = issuer
    ? ['req', '-new', '-x509', '-key', key, '-subj', `/CN=${name}`, '-CA', issuer.cert, '-CAkey', issuer.key, '-days', '1', '-out', cert]
    : ['req', '-new', '-x509', '-key', key, '-subj', `/CN=${name}`, '-days', '1', '-out', cert];
  const made = ssl.run(args);
  assert.equal(made.status, 0, made.output);
  return { cert, key, der: Buffer.from(new X509Certificate(readFileSync(cert)).raw) };
}

describe('certs-only PKCS#7 (pkijs)', () => {
  const root = opensslCertificate('p7-root');
  const leaf = opensslCertificate('p7-leaf', root);

  it('is read by openssl pkcs7 -print_certs with every certificate, in order', () => {
    const p7 = certsOnlyPkcs7([leaf.der, root.der]);
    const printed = ssl.run(['pkcs7', '-inform', 'DER', '-in', ssl.file('chain.p7b', p7), '-print_certs', '-noout']);
    assert.equal(printed.status, 0, printed.output);
    const subjects = [...printed.output.matchAll(/subject=\s*CN\s*=\s*(\S+)/g)].map((m) => m[1]);
    assert.deepEqual(subjects, ['p7-leaf', 'p7-root']);
  });

  it('round-trips the exact certificate bytes', () => {
    const back = certificatesOfPkcs7(certsOnlyPkcs7([leaf.der, root.der]));
    assert.deepEqual(back.map((b) => b.toString('hex')), [leaf.der.toString('hex'), root.der.toString('hex')]);
  });

  it('reads what openssl crl2pkcs7 writes', () => {
    const out = ssl.file('openssl.p7b', '');
    const made = ssl.run(['crl2pkcs7', '-nocrl', '-certfile', leaf.cert, '-outform', 'DER', '-out', out]);
    assert.equal(made.status, 0, made.output);
    assert.deepEqual(certificatesOfPkcs7(readFileSync(out)).map((b) => b.toString('hex')), [leaf.der.toString('hex')]);
  });

  it('refuses an empty list and bytes that are not PKCS#7', () => {
    assert.throws(() => certsOnlyPkcs7([]), /at least one certificate/);
    assert.throws(() => certificatesOfPkcs7(Buffer.from('3003020101', 'hex')));
  });
});
