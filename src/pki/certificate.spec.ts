import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, KeyUsageFlags } from '@peculiar/asn1-x509';
import { certificateParts, CertificateTemplate, fingerprint, signCertificate } from './certificate';
import { pemEncode, readTlv } from './der';
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoint,
  extendedKeyUsage,
  keyIdentifier,
  keyUsage,
  subjectAltName,
  subjectKeyIdentifier,
} from './extensions';
import { buildName } from './names';
import { OID } from './oids';
import { randomSerial } from './serial';
import { digestOf, SigningAlgorithm, SigningKey } from './signing';

// ---- openssl in a scratch directory ----------------------------------------------------------------------

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());
let fileCounter = 0;
const tempFile = (name: string, content: string | Buffer): string => ssl.file(`${++fileCounter}-${name}`, content);
const openssl = (args: string[]): { status: number; output: string } => ssl.run(args);

function opensslText(der: Buffer): string {
  const result = openssl(['x509', '-inform', 'DER', '-in', tempFile('cert.der', der), '-noout', '-text']);
  assert.equal(result.status, 0, `openssl could not parse the certificate: ${result.output}`);
  return result.output;
}

function opensslVerify(rootDer: Buffer, leafDer: Buffer): { ok: boolean; output: string } {
  const result = openssl([
    'verify',
    '-x509_strict',
    '-CAfile',
    tempFile('root.pem', pemEncode('CERTIFICATE', rootDer)),
    tempFile('leaf.pem', pemEncode('CERTIFICATE', leafDer)),
  ]);
  return { ok: result.status === 0 && /: OK\s*$/.test(result.output.trim()), output: result.output };
}

// ---- keys and certificates under test ----------------------------------------------------------------------

/** A node:crypto key as the SigningKey the X.509 code expects (DER ECDSA, PKCS #1 v1.5 RSA). */
function signingKey(privateKey: KeyObject, algorithm: SigningAlgorithm): SigningKey {
  return { algorithm, sign: async (data: Buffer) => sign(digestOf(algorithm), data, privateKey) };
}

interface CaUnderTest {
  key: SigningKey;
  spki: Buffer;
  keyId: Buffer;
  name: Buffer;
  der: Buffer;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function makeRoot(kind: 'ec-p256' | 'ec-p384' | 'rsa-2048', overrides: Partial<CertificateTemplate> = {}): Promise<CaUnderTest> {
  const pair =
    kind === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: kind === 'ec-p256' ? 'P-256' : 'P-384' });
  const algorithm: SigningAlgorithm = kind === 'rsa-2048' ? 'RSASSA_PKCS1_V1_5_SHA_256' : kind === 'ec-p256' ? 'ECDSA_SHA_256' : 'ECDSA_SHA_384';
  const key = signingKey(pair.privateKey, algorithm);
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const keyId = keyIdentifier(spki);
  const name = buildName({ country: 'US', organization: 'Acme Fleet', commonName: `Test Root ${kind}` });
  const now = Date.now();
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 365 * DAY),
      extensions: [
        basicConstraints(true, 1),
        keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign]),
        subjectKeyIdentifier(keyId),
      ],
      ...overrides,
    },
    key,
  );
  return { key, spki, keyId, name, der };
}

async function makeLeaf(issuer: CaUnderTest, overrides: Partial<CertificateTemplate> = {}): Promise<{ der: Buffer; serial: Buffer; spki: Buffer }> {
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const serial = overrides.serial ?? randomSerial();
  const now = Date.now();
  const der = await signCertificate(
    {
      serial,
      issuer: issuer.name,
      subject: buildName({ commonName: 'sensor-0042' }),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 30 * DAY),
      extensions: [
        basicConstraints(false),
        keyUsage([KeyUsageFlags.digitalSignature]),
        extendedKeyUsage([OID.clientAuth]),
        subjectKeyIdentifier(keyIdentifier(spki)),
        authorityKeyIdentifier(issuer.keyId),
        crlDistributionPoint('https://pki.example.com/v1/authorities/abc/crl'),
        authorityInfoAccess('https://pki.example.com/v1/authorities/abc/certificate'),
        subjectAltName(['sensor-0042.fleet.example.com'], ['192.0.2.42']),
      ],
      ...overrides,
    },
    issuer.key,
  );
  return { der, serial, spki };
}

// ---- raw DER reading, independent of the schema library ----------------------------------------------------

/** The TLVs directly inside the constructed element at `offset`. */
function children(der: Buffer, offset: number): { tag: number; start: number; contentStart: number; end: number }[] {
  const outer = readTlv(der, offset);
  const out = [];
  for (let at = outer.contentStart; at < outer.end; ) {
    const tlv = readTlv(der, at);
    out.push(tlv);
    at = tlv.end;
  }
  return out;
}

/** [tag, text] of notBefore and notAfter, read straight from the certificate bytes. */
function validityTimes(der: Buffer): { notBefore: [number, string]; notAfter: [number, string] } {
  const tbs = children(der, 0)[0];
  const fields = children(der, tbs.start);
  // version [0], serialNumber, signature, issuer, validity
  assert.equal(fields[0].tag, 0xa0, 'v3 certificate starts with an explicit version');
  const validity = children(der, fields[4].start);
  const read = (t: { tag: number; contentStart: number; end: number }): [number, string] => [
    t.tag,
    der.subarray(t.contentStart, t.end).toString('latin1'),
  ];
  return { notBefore: read(validity[0]), notAfter: read(validity[1]) };
}

function serialBytes(der: Buffer): Buffer {
  const tbs = children(der, 0)[0];
  const serial = children(der, tbs.start)[1];
  assert.equal(serial.tag, 0x02, 'serialNumber is an INTEGER');
  return der.subarray(serial.contentStart, serial.end);
}

const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

// ---- tests ------------------------------------------------------------------------------------------------------

describe('signCertificate', () => {
  const kinds = ['ec-p256', 'ec-p384', 'rsa-2048'] as const;
  for (const kind of kinds) {
    it(`makes a self-signed CA and a leaf that openssl verifies with -x509_strict (${kind} issuer)`, async () => {
      const root = await makeRoot(kind);
      const leaf = await makeLeaf(root);
      const rootCheck = opensslVerify(root.der, root.der);
      assert.ok(rootCheck.ok, rootCheck.output);
      const leafCheck = opensslVerify(root.der, leaf.der);
      assert.ok(leafCheck.ok, leafCheck.output);
    });
  }

  it('yields a leaf that openssl refuses against a different root (the check is not vacuous)', async () => {
    const root = await makeRoot('ec-p256');
    const other = await makeRoot('ec-p256');
    const leaf = await makeLeaf(other);
    assert.equal(opensslVerify(root.der, leaf.der).ok, false);
  });

  it('encodes the CA extensions openssl expects (critical basicConstraints with pathlen, keyCertSign, SKI)', async () => {
    const root = await makeRoot('ec-p256');
    const text = opensslText(root.der);
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /Issuer: C = US, O = Acme Fleet, CN = Test Root ec-p256/);
    assert.match(text, /Subject: C = US, O = Acme Fleet, CN = Test Root ec-p256/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
    assert.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const hexId = [...root.keyId].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
    assert.match(text, new RegExp(`X509v3 Subject Key Identifier:\\s+${hexId}`));
  });

  it('encodes the leaf extensions openssl expects (CA:FALSE, clientAuth, AKI, CRL DP, AIA, SANs)', async () => {
    const root = await makeRoot('ec-p256');
    const leaf = await makeLeaf(root);
    const text = opensslText(leaf.der);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication\n/);
    const hexId = [...root.keyId].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
    assert.match(text, new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${hexId}`));
    assert.match(text, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:https:\/\/pki\.example\.com\/v1\/authorities\/abc\/crl/);
    assert.match(text, /CA Issuers - URI:https:\/\/pki\.example\.com\/v1\/authorities\/abc\/certificate/);
    assert.match(text, /X509v3 Subject Alternative Name:\s+DNS:sensor-0042\.fleet\.example\.com, IP Address:192\.0\.2\.42/);
    assert.match(text, /Subject: CN = sensor-0042\n/);
  });

  const constraints: { name: string; ext: () => ReturnType<typeof basicConstraints>; der: string; text: RegExp }[] = [
    { name: 'CA with pathlen 0 (may issue only leaves)', ext: () => basicConstraints(true, 0), der: '30060101ff020100', text: /CA:TRUE, pathlen:0\n/ },
    { name: 'CA with pathlen 2', ext: () => basicConstraints(true, 2), der: '30060101ff020102', text: /CA:TRUE, pathlen:2\n/ },
    { name: 'CA without a path length', ext: () => basicConstraints(true), der: '30030101ff', text: /CA:TRUE\n/ },
    { name: 'leaf (CA:FALSE is the DER default, so an empty SEQUENCE)', ext: () => basicConstraints(false, 3), der: '3000', text: /CA:FALSE\n/ },
  ];
  for (const { name, ext, der, text } of constraints) {
    it(`encodes basicConstraints for a ${name}`, async () => {
      const extension = ext();
      assert.equal(extension.critical, true);
      assert.equal(extension.value.toString('hex'), der);
      const root = await makeRoot('ec-p256', { extensions: [extension, keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign])] });
      assert.match(opensslText(root.der), new RegExp(`X509v3 Basic Constraints: critical\\s+${text.source}`));
    });
  }

  it('carries explicit NULL parameters in an RSA signature algorithm and none for ECDSA', async () => {
    const rsa = await makeRoot('rsa-2048');
    const ec = await makeRoot('ec-p256');
    const rsaAlg = Buffer.from('300d06092a864886f70d01010b0500', 'hex'); // SEQ { sha256WithRSAEncryption, NULL }
    const ecAlg = Buffer.from('300a06082a8648ce3d040302', 'hex'); // SEQ { ecdsa-with-SHA256 }
    assert.ok(rsa.der.includes(rsaAlg));
    assert.ok(ec.der.includes(ecAlg));
    assert.ok(!ec.der.includes(Buffer.from('06082a8648ce3d0403020500', 'hex')), 'no NULL after the ECDSA OID');
  });

  describe('time encoding (RFC 5280 §4.1.2.5)', () => {
    const cases: { name: string; notAfter: string; tag: number; text: string }[] = [
      { name: 'a notAfter in 2051 as GeneralizedTime', notAfter: '2051-03-04T05:06:07.000Z', tag: GENERALIZED_TIME, text: '20510304050607Z' },
      { name: 'a notAfter on 2050-01-01 as GeneralizedTime', notAfter: '2050-01-01T00:00:00.000Z', tag: GENERALIZED_TIME, text: '20500101000000Z' },
      { name: 'a notAfter on 2049-12-31 23:59:59 as UTCTime', notAfter: '2049-12-31T23:59:59.000Z', tag: UTC_TIME, text: '491231235959Z' },
      { name: 'a notAfter in 2030 as UTCTime', notAfter: '2030-06-15T12:00:00.000Z', tag: UTC_TIME, text: '300615120000Z' },
      { name: 'fractional seconds dropped from GeneralizedTime', notAfter: '2051-01-01T00:00:00.999Z', tag: GENERALIZED_TIME, text: '20510101000000Z' },
      { name: 'fractional seconds dropped from UTCTime', notAfter: '2031-01-01T00:00:00.500Z', tag: UTC_TIME, text: '310101000000Z' },
    ];
    for (const { name, notAfter, tag, text } of cases) {
      it(`encodes ${name}`, async () => {
        const root = await makeRoot('ec-p256');
        const leaf = await makeLeaf(root, { notAfter: new Date(notAfter) });
        const times = validityTimes(leaf.der);
        assert.deepEqual(times.notAfter, [tag, text]);
        assert.ok(!times.notAfter[1].includes('.'), 'no fractional seconds');
      });
    }

    it('encodes a notBefore with milliseconds as whole seconds and leaves the caller\'s Date alone', async () => {
      const root = await makeRoot('ec-p256');
      const notBefore = new Date('2024-02-29T10:20:30.456Z');
      const leaf = await makeLeaf(root, { notBefore });
      assert.deepEqual(validityTimes(leaf.der).notBefore, [UTC_TIME, '240229102030Z']);
      assert.equal(notBefore.getTime(), Date.parse('2024-02-29T10:20:30.456Z'));
    });

    it('shows a 2051 notAfter to openssl as GENERALIZEDTIME and the certificate still verifies', async () => {
      const root = await makeRoot('ec-p256', { notAfter: new Date('2052-01-01T00:00:00Z') });
      const leaf = await makeLeaf(root, { notAfter: new Date('2051-06-01T00:00:00.250Z') });
      const parsed = openssl(['asn1parse', '-inform', 'DER', '-in', tempFile('leaf.der', leaf.der)]);
      assert.equal(parsed.status, 0, parsed.output);
      assert.match(parsed.output, /GENERALIZEDTIME\s*:20510601000000Z/);
      assert.match(opensslText(leaf.der), /Not After : Jun {2}1 00:00:00 2051 GMT/);
      const check = opensslVerify(root.der, leaf.der);
      assert.ok(check.ok, check.output);
    });
  });

  it('puts the serial in as a positive 20-byte INTEGER that openssl reads back', async () => {
    const root = await makeRoot('ec-p256');
    const serial = Buffer.from('7f'.padEnd(40, 'a5'), 'hex');
    const leaf = await makeLeaf(root, { serial });
    assert.deepEqual(serialBytes(leaf.der), serial);
    const out = openssl(['x509', '-inform', 'DER', '-in', tempFile('leaf.der', leaf.der), '-noout', '-serial']);
    assert.equal(out.output.trim(), `serial=${serial.toString('hex').toUpperCase()}`);
  });

  it('parses back with an independent ASN.1 library (@peculiar/asn1-x509)', async () => {
    const root = await makeRoot('ec-p256');
    const leaf = await makeLeaf(root);
    const cert = AsnConvert.parse(leaf.der, Certificate);
    assert.deepEqual(Buffer.from(cert.tbsCertificate.serialNumber), leaf.serial);
    assert.equal(cert.signatureAlgorithm.algorithm, OID.ecdsaWithSha256);
    assert.equal(cert.tbsCertificate.extensions?.length, 8);
    assert.deepEqual(Buffer.from(AsnConvert.serialize(cert)), leaf.der, 'a DER re-encoding is byte-identical');
  });

  it('splits a certificate into the exact bytes of its issuer, subject and public key', async () => {
    const root = await makeRoot('ec-p256');
    const leaf = await makeLeaf(root);
    const parts = certificateParts(leaf.der);
    assert.deepEqual(parts.issuer, root.name);
    assert.deepEqual(parts.subject, buildName({ commonName: 'sensor-0042' }));
    assert.deepEqual(parts.subjectPublicKeyInfo, leaf.spki);
    assert.deepEqual(certificateParts(root.der).subject, root.name);
  });
});

describe('randomSerial', () => {
  it('returns 20 bytes, positive and minimally encoded (first byte 0x01..0x7f), over many draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const serial = randomSerial();
      assert.equal(serial.length, 20);
      assert.ok(serial[0] > 0 && serial[0] < 0x80, `first byte ${serial[0]}`);
      seen.add(serial.toString('hex'));
    }
    assert.equal(seen.size, 2000, 'no repeats');
  });

  it('clears the top bit of the first byte', () => {
    assert.deepEqual(randomSerial(() => Buffer.alloc(20, 0xff)), Buffer.concat([Buffer.from([0x7f]), Buffer.alloc(19, 0xff)]));
  });

  it('draws again when the first byte would be zero (0x00 or 0x80)', () => {
    const draws = [Buffer.alloc(20, 0x00), Buffer.alloc(20, 0x80), Buffer.alloc(20, 0x81)];
    let calls = 0;
    const serial = randomSerial((size) => {
      assert.equal(size, 20);
      return draws[calls++];
    });
    assert.equal(calls, 3);
    assert.equal(serial[0], 0x01);
  });
});

describe('fingerprint', () => {
  it("equals openssl's SHA-256 fingerprint, in lowercase hex", async () => {
    const root = await makeRoot('ec-p256');
    const leaf = await makeLeaf(root);
    for (const der of [root.der, leaf.der]) {
      const out = openssl(['x509', '-inform', 'DER', '-in', tempFile('c.der', der), '-noout', '-fingerprint', '-sha256']);
      assert.equal(out.status, 0, out.output);
      const expected = out.output.trim().replace(/^sha256 Fingerprint=/i, '').replace(/:/g, '').toLowerCase();
      assert.match(fingerprint(der), /^[0-9a-f]{64}$/);
      assert.equal(fingerprint(der), expected);
    }
  });
});

describe('keyIdentifier', () => {
  it("matches the subject key identifier openssl computes for the same key (RFC 5280 method 1)", () => {
    const keyFile = ssl.file('ski.key');
    const made = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-subj', '/CN=ski', '-days', '1', '-outform', 'DER', '-out', ssl.file('ski.der')]);
    assert.equal(made.status, 0, made.output);
    const spki = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']);
    const text = opensslText(readFileSync(ssl.file('ski.der')));
    const hexId = [...keyIdentifier(spki)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
    assert.match(text, new RegExp(`X509v3 Subject Key Identifier:\\s+${hexId}`));
  });
});
