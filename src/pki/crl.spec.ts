import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { signCertificate } from './certificate';
import { CrlEntriesEncoder, CrlEntry, CrlTemplate, REASON_CODES, REVOCATION_REASONS, RevocationReason, signCrl, signEncodedCrl, StoredCrlEntry } from './crl';
import { bitString, explicit, sequence, smallInteger, time, tlv, unsignedInteger } from './der-writer';
import { authorityKeyIdentifier, extension, EXTENSION_OIDS } from './extensions';
import { signatureAlgorithmIdentifier } from './signing';
import { pemEncode } from './der';
import { basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from './extensions';
import { buildName } from './names';
import { randomSerial } from './serial';
import { digestOf, SigningAlgorithm, SigningKey } from './signing';

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());
let fileCounter = 0;
const tempFile = (name: string, content: string | Buffer): string => ssl.file(`${++fileCounter}-${name}`, content);
const openssl = (args: string[]): { status: number; output: string } => ssl.run(args);

function crlText(der: Buffer): string {
  const result = openssl(['crl', '-inform', 'DER', '-in', tempFile('x.crl', der), '-noout', '-text']);
  assert.equal(result.status, 0, `openssl could not parse the CRL: ${result.output}`);
  return result.output;
}

/** `openssl crl -CAfile` checks the CRL signature against the issuer and prints "verify OK". */
function crlVerify(der: Buffer, caDer: Buffer): { ok: boolean; output: string } {
  const result = openssl([
    'crl',
    '-inform',
    'DER',
    '-in',
    tempFile('x.crl', der),
    '-CAfile',
    tempFile('ca.pem', pemEncode('CERTIFICATE', caDer)),
    '-noout',
  ]);
  return { ok: result.status === 0 && /verify OK/.test(result.output), output: result.output };
}

interface Issuer {
  key: SigningKey;
  name: Buffer;
  keyId: Buffer;
  certDer: Buffer;
}

function signingKey(privateKey: KeyObject, algorithm: SigningAlgorithm): SigningKey {
  return { algorithm, sign: async (data: Buffer) => sign(digestOf(algorithm), data, privateKey) };
}

async function makeIssuer(kind: 'ec' | 'rsa' = 'ec', commonName = 'CRL Test Root'): Promise<Issuer> {
  const pair = kind === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = signingKey(pair.privateKey, kind === 'rsa' ? 'RSASSA_PKCS1_V1_5_SHA_256' : 'ECDSA_SHA_256');
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const keyId = keyIdentifier(spki);
  const name = buildName({ organization: 'Acme Fleet', commonName });
  const now = Date.now();
  const certDer = await signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
      extensions: [basicConstraints(true), keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign]), subjectKeyIdentifier(keyId)],
    },
    key,
  );
  return { key, name, keyId, certDer };
}

function template(issuer: Issuer, overrides: Partial<CrlTemplate> = {}): CrlTemplate {
  const now = Date.now();
  return {
    issuer: issuer.name,
    issuerKeyId: issuer.keyId,
    crlNumber: 7,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 86_400_000),
    entries: [],
    ...overrides,
  };
}

/** openssl's -text block for each revoked serial (upper-case hex, as openssl prints it). */
function entryBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const parts = text.split(/Serial Number: /).slice(1);
  for (const part of parts) {
    const [serial, ...rest] = part.split('\n');
    blocks.set(serial.trim(), rest.join('\n').split(/\n\s*Signature Algorithm:/)[0]);
  }
  return blocks;
}

const OPENSSL_REASON: Record<RevocationReason, string> = {
  unspecified: 'Unspecified',
  keyCompromise: 'Key Compromise',
  cACompromise: 'CA Compromise',
  affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  privilegeWithdrawn: 'Privilege Withdrawn',
  aACompromise: 'AA Compromise',
};

describe('signCrl', () => {
  for (const kind of ['ec', 'rsa'] as const) {
    it(`produces a CRL that openssl verifies against the issuer certificate (${kind} issuer)`, async () => {
      const issuer = await makeIssuer(kind);
      const der = await signCrl(
        template(issuer, { entries: [{ serial: randomSerial(), revokedAt: new Date(), reason: 'keyCompromise' }] }),
        issuer.key,
      );
      const check = crlVerify(der, issuer.certDer);
      assert.ok(check.ok, check.output);
    });
  }

  it('fails openssl verification against a different CA with the same name (the check is not vacuous)', async () => {
    const issuer = await makeIssuer('ec', 'Same Name');
    const impostor = await makeIssuer('ec', 'Same Name');
    const der = await signCrl(template(issuer), issuer.key);
    assert.equal(crlVerify(der, impostor.certDer).ok, false);
  });

  it('is a v2 CRL naming the issuer, with the CRL number and the issuer key identifier', async () => {
    const issuer = await makeIssuer();
    const text = crlText(await signCrl(template(issuer, { crlNumber: 42 }), issuer.key));
    assert.match(text, /Version 2 \(0x1\)/);
    assert.match(text, /Issuer: O = Acme Fleet, CN = CRL Test Root/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /X509v3 CRL Number:\s+42\n/);
    const hexId = [...issuer.keyId].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
    assert.match(text, new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${hexId}`));
  });

  const numbers: [number, string][] = [
    [0, '0'],
    [1, '1'],
    [127, '127'],
    [128, '128'],
    [255, '255'],
    [256, '256'],
    [65_535, '65535'],
    [2_147_483_647, '2147483647'],
  ];
  for (const [crlNumber, printed] of numbers) {
    it(`encodes CRL number ${crlNumber} as a non-negative INTEGER`, async () => {
      const issuer = await makeIssuer();
      const text = crlText(await signCrl(template(issuer, { crlNumber }), issuer.key));
      assert.match(text, new RegExp(`X509v3 CRL Number:\\s+${printed}\\n`));
    });
  }

  it('says "No Revoked Certificates" when there are no entries', async () => {
    const issuer = await makeIssuer();
    const der = await signCrl(template(issuer), issuer.key);
    assert.match(crlText(der), /No Revoked Certificates\./);
    assert.ok(crlVerify(der, issuer.certDer).ok);
  });

  it('lists every entry with its serial, revocation date and reason code, and none for unspecified', async () => {
    const issuer = await makeIssuer();
    const revokedAt = new Date('2025-03-01T08:09:10.789Z');
    const entries: CrlEntry[] = REVOCATION_REASONS.map((reason) => ({ serial: randomSerial(), revokedAt, reason }));
    const der = await signCrl(template(issuer, { entries }), issuer.key);
    const text = crlText(der);
    const blocks = entryBlocks(text);
    assert.equal(blocks.size, REVOCATION_REASONS.length);
    for (const entry of entries) {
      const block = blocks.get(entry.serial.toString('hex').toUpperCase());
      assert.ok(block !== undefined, `entry for ${entry.reason} is listed`);
      assert.match(block, /Revocation Date: Mar {2}1 08:09:10 2025 GMT/);
      if (entry.reason === 'unspecified') {
        assert.doesNotMatch(block, /CRL Reason Code/, 'RFC 5280 §5.3.1: unspecified is left out');
        assert.doesNotMatch(block, /CRL entry extensions/);
      } else {
        assert.match(block, new RegExp(`X509v3 CRL Reason Code:\\s+${OPENSSL_REASON[entry.reason]}(\\n|$)`), entry.reason);
      }
    }
    assert.ok(crlVerify(der, issuer.certDer).ok);
  });

  it('prints the update times openssl reads back, in whole seconds', async () => {
    const issuer = await makeIssuer();
    const der = await signCrl(
      template(issuer, { thisUpdate: new Date('2030-01-02T03:04:05.678Z'), nextUpdate: new Date('2030-01-03T03:04:05.999Z') }),
      issuer.key,
    );
    const text = crlText(der);
    assert.match(text, /Last Update: Jan {2}2 03:04:05 2030 GMT/);
    assert.match(text, /Next Update: Jan {2}3 03:04:05 2030 GMT/);
    assert.ok(!der.includes(Buffer.from('05.678')) && !der.includes(Buffer.from('05.999')), 'no fractional seconds');
  });

  it('encodes a nextUpdate after 2049 as GeneralizedTime', async () => {
    const issuer = await makeIssuer();
    const der = await signCrl(template(issuer, { nextUpdate: new Date('2051-01-01T00:00:00Z') }), issuer.key);
    const generalizedTime = Buffer.concat([Buffer.from([0x18, 0x0f]), Buffer.from('20510101000000Z')]);
    assert.ok(der.includes(generalizedTime));
    assert.match(crlText(der), /Next Update: Jan {2}1 00:00:00 2051 GMT/);
  });
});

/** The CRL built the plain way with the generic DER writer: what the paged encoder must produce byte for byte. */
function referenceTbs(header: Omit<CrlTemplate, 'entries'>, entries: CrlEntry[], algorithm: SigningAlgorithm): Buffer {
  const encoded = entries.map((entry) =>
    sequence(
      unsignedInteger(entry.serial),
      time(entry.revokedAt),
      ...(entry.reason === 'unspecified'
        ? []
        : [sequence(extension(EXTENSION_OIDS.cRLReason, false, tlv(0x0a, Buffer.from([REASON_CODES[entry.reason]]))).der)]),
    ),
  );
  return sequence(
    smallInteger(1),
    signatureAlgorithmIdentifier(algorithm),
    header.issuer,
    time(header.thisUpdate),
    time(header.nextUpdate),
    ...(encoded.length ? [sequence(...encoded)] : []),
    explicit(0, sequence(authorityKeyIdentifier(header.issuerKeyId).der, extension(EXTENSION_OIDS.cRLNumber, false, smallInteger(header.crlNumber)).der)),
  );
}

describe('CrlEntriesEncoder and signEncodedCrl', () => {
  /** A key that records what it signed and answers a fixed signature. */
  const recordingKey = (algorithm: SigningAlgorithm, signature: Buffer) => {
    const signed: Buffer[] = [];
    const key: SigningKey = { algorithm, sign: async (data) => (signed.push(Buffer.from(data)), signature) };
    return { key, signed };
  };

  for (const count of [0, 1, 3, 150, 7000]) {
    it(`encodes ${count} entries over several pages exactly as the generic DER writer does`, async () => {
      const issuer = await makeIssuer();
      const reasons = REVOCATION_REASONS;
      const entries: CrlEntry[] = Array.from({ length: count }, (_, i) => {
        // Edge cases among the random ones: leading zero bytes, top bit set (pad), one byte, after 2049.
        const serial = i % 5 === 0 ? Buffer.from([0, 0, 0x80 | i % 128, i % 256]) : i % 7 === 0 ? Buffer.from([i % 100]) : randomSerial();
        const revokedAt = new Date(i % 11 === 0 ? Date.UTC(2050 + (i % 60), i % 12, 1 + (i % 28), 23, 59, 59, 999) : Date.UTC(2020, 0, 1) + i * 7_919_000);
        return { serial, revokedAt, reason: reasons[i % reasons.length] };
      });
      const header = { issuer: issuer.name, issuerKeyId: issuer.keyId, crlNumber: 300 + count, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3_600_000) };
      const encoder = new CrlEntriesEncoder();
      const stored: StoredCrlEntry[] = entries.map((e, i) => ({ serial: e.serial.toString('hex'), revokedAt: i % 2 ? e.revokedAt.toISOString() : e.revokedAt, reason: e.reason }));
      for (let start = 0; start < stored.length; start += 1000) encoder.addPage(stored.slice(start, start + 1000));
      assert.equal(encoder.count, count);
      const signature = Buffer.alloc(71, 0x5a);
      const { key, signed } = recordingKey('ECDSA_SHA_256', signature);
      const der = await signEncodedCrl(header, encoder, key);
      const tbs = referenceTbs(header, entries, 'ECDSA_SHA_256');
      assert.deepEqual(signed, [tbs], 'one signature, over the TBS');
      assert.deepEqual(der, sequence(tbs, signatureAlgorithmIdentifier('ECDSA_SHA_256'), bitString(signature)));
    });
  }

  it('signs once over a large CRL that openssl parses and verifies, listing every serial', async () => {
    const issuer = await makeIssuer('rsa');
    const serials = Array.from({ length: 20_000 }, () => randomSerial());
    const encoder = new CrlEntriesEncoder();
    for (let start = 0; start < serials.length; start += 5000) {
      encoder.addPage(serials.slice(start, start + 5000).map((serial) => ({ serial: serial.toString('hex'), revokedAt: '2026-01-02T03:04:05.000Z', reason: 'superseded' as const })));
    }
    let signatures = 0;
    const key: SigningKey = { algorithm: issuer.key.algorithm, sign: (data) => (signatures++, issuer.key.sign(data)) };
    const der = await signEncodedCrl({ issuer: issuer.name, issuerKeyId: issuer.keyId, crlNumber: 9, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 60_000) }, encoder, key);
    assert.equal(signatures, 1);
    assert.ok(crlVerify(der, issuer.certDer).ok);
    // Through a file: the text of 20,000 entries is larger than spawnSync's output buffer.
    const textFile = tempFile('big.txt', '');
    const parsed = openssl(['crl', '-inform', 'DER', '-in', tempFile('big.crl', der), '-noout', '-text', '-out', textFile]);
    assert.equal(parsed.status, 0, parsed.output);
    const listed = [...readFileSync(textFile, 'utf8').matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1].toLowerCase());
    assert.deepEqual(new Set(listed), new Set(serials.map((s) => s.toString('hex').replace(/^(00)+/, ''))));
    assert.equal(listed.length, serials.length);
  });

  it('refuses a serial that is not hex or is too long, and an unknown reason', () => {
    const encoder = new CrlEntriesEncoder();
    const at = '2026-01-01T00:00:00Z';
    assert.throws(() => encoder.addPage([{ serial: 'zz', revokedAt: at, reason: 'superseded' }]), RangeError);
    assert.throws(() => encoder.addPage([{ serial: 'ab'.repeat(33), revokedAt: at, reason: 'superseded' }]), RangeError);
    assert.throws(() => encoder.addPage([{ serial: 'ab', revokedAt: 'not a date', reason: 'superseded' }]), RangeError);
    assert.throws(() => encoder.addPage([{ serial: 'ab', revokedAt: at, reason: 'certificateHold' as RevocationReason }]), RangeError);
  });
});
