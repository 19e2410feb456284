import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { certificateFile } from './certificate-files';
import { pemEncode } from './der';
import { certificatesOfPkcs7 } from './pkcs7';

/** Three real certificates (leaf, intermediate, root) made by openssl; the file formats do not look inside them. */
function chain(): Buffer[] {
  const ssl = new OpenSslWorkspace();
  try {
    const made: Buffer[] = [];
    let issuer: { cert: string; key: string } | undefined;
    for (const name of ['files-root', 'files-intermediate', 'files-leaf']) {
      const key = ssl.file(`${name}.key`, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
      const cert = ssl.file(`${name}.pem`, '');
      const issuerArgs = issuer ? ['-CA', issuer.cert, '-CAkey', issuer.key] : [];
      const result = ssl.run(['req', '-new', '-x509', '-key', key, '-subj', `/CN=${name}`, ...issuerArgs, '-days', '1', '-out', cert]);
      assert.equal(result.status, 0, result.output);
      made.unshift(Buffer.from(new X509Certificate(ssl.run(['x509', '-in', cert]).output).raw));
      issuer = { cert, key };
    }
    return made;
  } finally {
    ssl.cleanup();
  }
}

describe('certificate files (pem, der, p7b)', () => {
  const [leaf, intermediate, root] = chain();

  it('pem: the certificate, then the chain up to the root', () => {
    const file = certificateFile('pem', leaf, [intermediate, root]);
    assert.equal(file.bytes.toString('ascii'), [leaf, intermediate, root].map((der) => pemEncode('CERTIFICATE', der)).join(''));
    assert.deepEqual([file.contentType, file.extension], ['application/x-pem-file', 'pem']);
  });

  it('der: the certificate alone', () => {
    const file = certificateFile('der', leaf, [intermediate, root]);
    assert.deepEqual(file.bytes, leaf);
    assert.deepEqual([file.contentType, file.extension], ['application/pkix-cert', 'der']);
  });

  it('p7b: a certs-only PKCS #7 of the certificate and the chain, in order', () => {
    const file = certificateFile('p7b', leaf, [intermediate, root]);
    assert.deepEqual(certificatesOfPkcs7(file.bytes), [leaf, intermediate, root]);
    assert.deepEqual([file.contentType, file.extension], ['application/pkcs7-mime; smime-type=certs-only', 'p7b']);
    assert.deepEqual(certificatesOfPkcs7(certificateFile('p7b', root, []).bytes), [root]);
  });
});
