import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { certificateParts, CertificateTemplate, signCertificate } from './certificate';
import { authorityKeyIdentifier, basicConstraints, EXTENSION_OIDS, keyIdentifier, keyUsage } from './extensions';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { describeCertificate, IssuerFacts } from './issuance';
import { IssuedByFailure, IssuedByResult, validateIssuedBy, validityProblem, verifyIssuedBy } from './issued-by';
import { buildName } from './names';
import { findProfile } from './profiles';
import { randomSerial } from './serial';
import { digestOf, SigningAlgorithm, SigningKey } from './signing';

const DAY = 86_400_000;
const NOW = new Date('2031-05-01T12:00:00.000Z');
const URLS = { crl: 'https://pki.example.com/crl', caCertificate: 'https://pki.example.com/ca', ocsp: 'https://pki.example.com/ocsp' };

interface Key {
  spki: Buffer;
  signer: SigningKey;
}

function newKey(type: 'P-256' | 'P-384' | 'rsa'): Key {
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: type });
  const algorithm: SigningAlgorithm = type === 'rsa' ? 'RSASSA_PKCS1_V1_5_SHA_256' : type === 'P-384' ? 'ECDSA_SHA_384' : 'ECDSA_SHA_256';
  return { spki: pair.publicKey.export({ type: 'spki', format: 'der' }), signer: { algorithm, sign: async (data) => sign(digestOf(algorithm), data, pair.privateKey) } };
}

const CA_KEY = newKey('P-256');
const OTHER_KEY = newKey('P-256');
const DEVICE_KEY = newKey('P-256');
const CA_SUBJECT = { organization: 'Acme Fleet', commonName: 'Acme Devices CA' };

interface Ca {
  der: Buffer;
  facts: IssuerFacts;
  key: Key;
}

/** A self-signed CA (as the service makes them) valid a year around NOW. */
async function ca(key: Key = CA_KEY, subject = CA_SUBJECT): Promise<Ca> {
  const { tbs } = describeCertificate({ kind: 'root-ca', subject, pathLength: null, validityDays: 365, subjectPublicKeyInfo: key.spki, now: new Date(NOW.getTime() - 180 * DAY), backdateSeconds: 0 });
  const der = await signCertificate({ serial: randomSerial(), ...tbs }, key.signer);
  return { der, key, facts: { name: certificateParts(der).subject, keyId: keyIdentifier(key.spki), notBefore: tbs.notBefore, notAfter: tbs.notAfter } };
}

/** The template of a device certificate under `issuer`, valid 30 days from NOW (less the 5-minute backdate). */
function deviceTemplate(issuer: IssuerFacts): CertificateTemplate {
  const { tbs } = describeCertificate({
    kind: 'end-entity',
    issuer,
    urls: URLS,
    profile: findProfile('device'),
    names: { subject: { commonName: 'sensor-1' }, dnsNames: [], ipAddresses: [], thingName: 'sensor-1' },
    validityDays: 30,
    subjectPublicKeyInfo: DEVICE_KEY.spki,
    now: NOW,
    backdateSeconds: 300,
  });
  return { serial: randomSerial(), ...tbs };
}

function assertFailure(result: IssuedByResult, expected: IssuedByFailure, message: RegExp): void {
  assert.equal(result.ok, false, `expected ${expected}, got success`);
  if (result.ok) return;
  assert.equal(result.failure, expected, result.message);
  assert.match(result.message, message);
}

describe('validateIssuedBy: a certificate against its authority, with @peculiar/x509', () => {
  it('accepts a certificate the authority issued, and returns its validity', async () => {
    const authority = await ca();
    const template = deviceTemplate(authority.facts);
    const result = await validateIssuedBy(await signCertificate(template, CA_KEY.signer), authority.der, NOW);
    assert.deepEqual(result, { ok: true, validity: { notBefore: new Date(NOW.getTime() - 300_000), notAfter: new Date(NOW.getTime() + 30 * DAY) } });
  });

  it('accepts P-384 and RSA authorities (ECDSA with SHA-384, PKCS #1 v1.5 with SHA-256)', async () => {
    for (const type of ['P-384', 'rsa'] as const) {
      const authority = await ca(newKey(type));
      const der = await signCertificate(deviceTemplate(authority.facts), authority.key.signer);
      assert.equal((await validateIssuedBy(der, authority.der, NOW)).ok, true, type);
    }
  });

  it('refuses a forgery: same issuer name and AKI, signed by another key', async () => {
    const authority = await ca();
    const forged = await signCertificate(deviceTemplate(authority.facts), OTHER_KEY.signer);
    assertFailure(await validateIssuedBy(forged, authority.der, NOW), 'signature', /signature does not verify with the authority's public key/);
  });

  it('refuses a certificate of a namesake CA (same subject, another key): its AKI names the other key', async () => {
    const authority = await ca();
    const namesake = await ca(OTHER_KEY);
    const der = await signCertificate(deviceTemplate(namesake.facts), OTHER_KEY.signer);
    assertFailure(await validateIssuedBy(der, authority.der, NOW), 'authority-key-id', new RegExp(`identifier ${keyIdentifier(OTHER_KEY.spki).toString('hex')} is not the authority's key identifier ${keyIdentifier(CA_KEY.spki).toString('hex')}`));
  });

  it('refuses a wrong AKI even when the signature and the name are right', async () => {
    const authority = await ca();
    const der = await signCertificate(deviceTemplate({ ...authority.facts, keyId: Buffer.alloc(20, 7) }), CA_KEY.signer);
    assertFailure(await validateIssuedBy(der, authority.der, NOW), 'authority-key-id', /0707070707/);
  });

  it('refuses a certificate without an authority key identifier', async () => {
    const authority = await ca();
    const template = deviceTemplate(authority.facts);
    const der = await signCertificate({ ...template, extensions: template.extensions.filter((e) => e.extnID !== EXTENSION_OIDS.authorityKeyIdentifier) }, CA_KEY.signer);
    assertFailure(await validateIssuedBy(der, authority.der, NOW), 'authority-key-id', /has no authority key identifier/);
  });

  it('refuses a certificate whose issuer is another name, even signed by the authority key', async () => {
    const authority = await ca();
    const der = await signCertificate(deviceTemplate({ ...authority.facts, name: buildName({ organization: 'Acme Fleet', commonName: 'Acme Claims CA' }) }), CA_KEY.signer);
    assertFailure(await validateIssuedBy(der, authority.der, NOW), 'issuer-name', /the issuer "O=Acme Fleet, CN=Acme Claims CA" is not the authority's subject "O=Acme Fleet, CN=Acme Devices CA"/);
  });

  it('refuses a certificate whose signature bytes were altered', async () => {
    const authority = await ca();
    const der = await signCertificate(deviceTemplate(authority.facts), CA_KEY.signer);
    der[der.length - 3] ^= 0x01;
    assertFailure(await validateIssuedBy(der, authority.der, NOW), 'signature', /does not verify/);
  });

  it('refuses an expired certificate and one not yet valid; both ends are inclusive (RFC 5280 §4.1.2.5)', async () => {
    const authority = await ca();
    const der = await signCertificate(deviceTemplate(authority.facts), CA_KEY.signer);
    const notBefore = new Date(NOW.getTime() - 300_000);
    const notAfter = new Date(NOW.getTime() + 30 * DAY);
    assert.equal((await validateIssuedBy(der, authority.der, notBefore)).ok, true, 'at notBefore');
    assert.equal((await validateIssuedBy(der, authority.der, notAfter)).ok, true, 'at notAfter');
    assertFailure(await validateIssuedBy(der, authority.der, new Date(notAfter.getTime() + 1000)), 'expired', /the certificate expired at 2031-05-31T12:00:00.000Z/);
    assertFailure(await validateIssuedBy(der, authority.der, new Date(notBefore.getTime() - 1000)), 'not-yet-valid', /not valid before 2031-05-01T11:55:00.000Z/);
  });

  it('checks the time apart from the rest (verifyIssuedBy + validityProblem), so the time-free result can be kept', async () => {
    const authority = await ca();
    const der = await signCertificate(deviceTemplate(authority.facts), CA_KEY.signer);
    const issued = await verifyIssuedBy(der, authority.der);
    assert.ok(issued.ok);
    assert.equal(validityProblem(issued.validity, NOW), undefined);
    assert.equal(validityProblem(issued.validity, new Date(NOW.getTime() + 31 * DAY))?.failure, 'expired');
  });

  it('matches the AKI against the SHA-1 of the authority key when the authority certificate has no SKI', async () => {
    const authority = await ca();
    // An authority certificate made elsewhere, without an SKI: key identifier method (1) of RFC 5280 §4.2.1.2 stands in.
    const bare = await signCertificate(
      {
        serial: randomSerial(),
        issuer: authority.facts.name,
        subject: authority.facts.name,
        subjectPublicKeyInfo: CA_KEY.spki,
        notBefore: authority.facts.notBefore,
        notAfter: authority.facts.notAfter,
        extensions: [basicConstraints(true), keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign]), authorityKeyIdentifier(keyIdentifier(CA_KEY.spki))],
      },
      CA_KEY.signer,
    );
    const der = await signCertificate(deviceTemplate(authority.facts), CA_KEY.signer);
    assert.equal((await validateIssuedBy(der, bare, NOW)).ok, true);
  });

  it('refuses bytes that are not a certificate, on either side', async () => {
    const authority = await ca();
    const der = await signCertificate(deviceTemplate(authority.facts), CA_KEY.signer);
    assertFailure(await validateIssuedBy(Buffer.from('30030201', 'hex'), authority.der, NOW), 'malformed', /not a well-formed X.509 certificate/);
    assertFailure(await validateIssuedBy(der, der.subarray(0, 100), NOW), 'malformed', /not a well-formed/);
  });
});
