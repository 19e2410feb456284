import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import {
  BasicConstraintsExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from './x509-library';
import { DomainError } from '../common/errors';
import { certificateParts } from './certificate';
import { subjectKeyIdentifierOf, validateExternalCertificate } from './external-chain';

const subtle = webcrypto.subtle;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto as unknown as Parameters<typeof X509CertificateGenerator.create>[1];
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY = 86_400_000;
const CA_USAGES = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;

interface Ca {
  name: string;
  keys: CryptoKeyPair;
  cert: X509Certificate;
  pem: string;
}

interface CaOptions {
  issuer?: Ca;
  keys?: CryptoKeyPair;
  ca?: boolean;
  pathLength?: number;
  /** null: no keyUsage extension at all. */
  usages?: number | null;
  notBefore?: Date;
  notAfter?: Date;
  hash?: 'SHA-1' | 'SHA-256';
}

let serial = 1;

async function newKeys(): Promise<CryptoKeyPair> {
  return (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** A certificate made by @peculiar/x509's generator: a self-signed root unless an issuer is given. */
async function makeCa(name: string, options: CaOptions = {}): Promise<Ca> {
  const keys = options.keys ?? (await newKeys());
  const extensions: Extension[] = [new BasicConstraintsExtension(options.ca ?? true, options.pathLength, true), await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto)];
  if (options.usages !== null) extensions.push(new KeyUsagesExtension(options.usages ?? CA_USAGES, true));
  const common = {
    serialNumber: (serial++).toString(16).padStart(4, '0'),
    notBefore: options.notBefore ?? new Date(Date.now() - DAY),
    notAfter: options.notAfter ?? new Date(Date.now() + 365 * DAY),
    signingAlgorithm: { ...EC, hash: options.hash ?? 'SHA-256' },
    extensions,
  };
  const cert = options.issuer
    ? await X509CertificateGenerator.create({ ...common, subject: name, issuer: options.issuer.name, publicKey: keys.publicKey, signingKey: options.issuer.keys.privateKey }, crypto)
    : await X509CertificateGenerator.createSelfSigned({ ...common, name, keys }, crypto);
  return { name, keys, cert, pem: cert.toString('pem') };
}

async function spkiOf(keys: CryptoKeyPair): Promise<Buffer> {
  return Buffer.from(await subtle.exportKey('spki', keys.publicKey));
}

async function refusal(promise: Promise<unknown>): Promise<DomainError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DomainError, String(err));
    return err;
  }
  assert.fail('the upload was accepted');
}

describe('validateExternalCertificate (external roots, @peculiar/x509)', async () => {
  const authorityKeys = await newKeys();
  const root = await makeCa('CN=Offline Root, O=Acme');
  const policy = await makeCa('CN=Policy CA, O=Acme', { issuer: root, pathLength: 1 });
  const ours = await makeCa('CN=Issuing CA, O=Acme', { issuer: root, keys: authorityKeys, pathLength: 0 });
  const expected = { subjectPublicKeyInfo: await spkiOf(authorityKeys), subject: certificateParts(Buffer.from(ours.cert.rawData)).subject, now: new Date() };
  const signedBy = (issuer: Ca, options: CaOptions = {}) => makeCa('CN=Issuing CA, O=Acme', { issuer, keys: authorityKeys, ...options });

  it('accepts a certificate for the authority key signed by the root, and returns the path', async () => {
    const result = await validateExternalCertificate({ certificatePem: ours.pem, chainPem: root.pem }, expected);
    assert.deepEqual(result.certificateDer, Buffer.from(ours.cert.rawData));
    assert.deepEqual(result.issuersDer, [Buffer.from(root.cert.rawData)]);
    assert.equal(result.pathLength, 0);
    assert.equal(result.issuer, root.cert.subject);
    assert.match(result.serial, /^[0-9a-f]+$/);
    assert.equal(result.notAfter.getTime(), ours.cert.notAfter.getTime());
  });

  it('builds the path through an external intermediate from a chain in any order, ignoring extra certificates', async () => {
    const underPolicy = await signedBy(policy);
    const stranger = await makeCa('CN=Stranger Root');
    for (const chainPem of [policy.pem + root.pem, root.pem + stranger.pem + policy.pem, underPolicy.pem + root.pem + policy.pem]) {
      const result = await validateExternalCertificate({ certificatePem: underPolicy.pem, chainPem }, expected);
      assert.deepEqual(result.issuersDer, [Buffer.from(policy.cert.rawData), Buffer.from(root.cert.rawData)], 'direct issuer first, root last, nothing else');
    }
  });

  const cases: [string, () => Promise<[string, string]>, string][] = [
    ['another key', async () => [(await makeCa('CN=Issuing CA, O=Acme', { issuer: root })).pem, root.pem], 'UPLOADED_CERTIFICATE_KEY_MISMATCH'],
    ['another subject', async () => [(await makeCa('CN=Someone Else, O=Acme', { issuer: root, keys: authorityKeys })).pem, root.pem], 'UPLOADED_CERTIFICATE_SUBJECT_MISMATCH'],
    ['a self-signed certificate for the authority key', async () => [(await makeCa('CN=Issuing CA, O=Acme', { keys: authorityKeys })).pem, root.pem], 'CHAIN_INCOMPLETE'],
    ['a chain without the root', async () => [(await signedBy(policy)).pem, policy.pem], 'CHAIN_INCOMPLETE'],
    ['a chain with another root', async () => [ours.pem, (await makeCa('CN=Stranger Root')).pem], 'CHAIN_INCOMPLETE'],
    ['a root of the same name and another key', async () => [ours.pem, (await makeCa('CN=Offline Root, O=Acme')).pem], 'CHAIN_SIGNATURE_INVALID'],
    ['a SHA-1 signature', async () => [(await signedBy(root, { hash: 'SHA-1' })).pem, root.pem], 'CHAIN_WEAK_SIGNATURE_ALGORITHM'],
    ['an expired certificate', async () => [(await signedBy(root, { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })).pem, root.pem], 'CHAIN_CERTIFICATE_EXPIRED'],
    ['a certificate not valid yet', async () => [(await signedBy(root, { notBefore: new Date(Date.now() + DAY) })).pem, root.pem], 'CHAIN_CERTIFICATE_NOT_YET_VALID'],
    [
      'an expired root',
      async () => {
        const old = await makeCa('CN=Old Root', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
        return [(await signedBy(old)).pem, old.pem];
      },
      'CHAIN_CERTIFICATE_EXPIRED',
    ],
    ['a certificate that is not a CA', async () => [(await signedBy(root, { ca: false })).pem, root.pem], 'CHAIN_NOT_A_CA'],
    [
      'a root that is not a CA',
      async () => {
        const notCa = await makeCa('CN=Not a CA Root', { ca: false });
        return [(await signedBy(notCa)).pem, notCa.pem];
      },
      'CHAIN_NOT_A_CA',
    ],
    [
      'a root with pathLen 0',
      async () => {
        const narrow = await makeCa('CN=Narrow Root', { pathLength: 0 });
        return [(await signedBy(narrow)).pem, narrow.pem];
      },
      'CHAIN_PATH_LENGTH_EXCEEDED',
    ],
    [
      'a root with pathLen 1 above an external intermediate',
      async () => {
        const narrow = await makeCa('CN=Narrow Root 1', { pathLength: 1 });
        const middle = await makeCa('CN=Middle CA', { issuer: narrow });
        return [(await signedBy(middle)).pem, middle.pem + narrow.pem];
      },
      'CHAIN_PATH_LENGTH_EXCEEDED',
    ],
    [
      'an external intermediate with pathLen 0',
      async () => {
        const middle = await makeCa('CN=Leaf-only CA', { issuer: root, pathLength: 0 });
        return [(await signedBy(middle)).pem, middle.pem + root.pem];
      },
      'CHAIN_PATH_LENGTH_EXCEEDED',
    ],
    ['no keyCertSign on the certificate', async () => [(await signedBy(root, { usages: KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature })).pem, root.pem], 'CHAIN_KEY_CERT_SIGN_MISSING'],
    [
      'no keyUsage on the root',
      async () => {
        const bare = await makeCa('CN=Bare Root', { usages: null });
        return [(await signedBy(bare)).pem, bare.pem];
      },
      'CHAIN_KEY_CERT_SIGN_MISSING',
    ],
    ['no cRLSign on the certificate', async () => [(await signedBy(root, { usages: KeyUsageFlags.keyCertSign })).pem, root.pem], 'UPLOADED_CERTIFICATE_CRL_SIGN_MISSING'],
    ['a certificate that is not PEM', async () => ['hello', root.pem], 'UPLOADED_CERTIFICATE_UNREADABLE'],
    ['a PEM block that is not a certificate', async () => ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', root.pem], 'UPLOADED_CERTIFICATE_UNREADABLE'],
    ['two certificates in certificatePem', async () => [ours.pem + root.pem, root.pem], 'UPLOADED_CERTIFICATE_UNREADABLE'],
    ['text between the chain certificates', async () => [ours.pem, `${policy.pem}subject=CN=Offline Root\n${root.pem}`], 'UPLOADED_CERTIFICATE_UNREADABLE'],
    ['an empty chain', async () => [ours.pem, '\n'], 'CHAIN_INCOMPLETE'],
    ['eleven chain certificates', async () => [ours.pem, root.pem.repeat(11)], 'CHAIN_TOO_LONG'],
    ['an oversized certificate', async () => [ours.pem + ' '.repeat(16 * 1024), root.pem], 'UPLOADED_CERTIFICATE_UNREADABLE'],
  ];
  for (const [name, make, code] of cases) {
    it(`refuses ${name}: ${code}`, async () => {
      const [certificatePem, chainPem] = await make();
      const error = await refusal(validateExternalCertificate({ certificatePem, chainPem }, expected));
      assert.equal(error.code, code, error.message);
      assert.equal(error.status, 422);
    });
  }

  it('reads the subject key identifier the root gave the certificate', async () => {
    const ski = ours.cert.getExtension(SubjectKeyIdentifierExtension)!.keyId;
    assert.equal(subjectKeyIdentifierOf(Buffer.from(ours.cert.rawData))?.toString('hex'), ski);
  });
});
