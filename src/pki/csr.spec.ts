import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildCsr, CsrOptions } from '../../tools/csr-builder';
import { DomainError } from '../common/errors';
import { MAX_CSR_PEM_LENGTH, parseCsr } from './csr';
import { findProfile, namesFor } from './profiles';
import { pemDecode } from '../../tools/clients/pem';
import { pemEncode } from './der';

let dir: string;

let counter = 0;

/** A CSR made by openssl itself: `openssl req -new -newkey <keyArgs> -subj <subject> [extra]`. */
function opensslCsrWithKey(keyArgs: string[], subject: string, extra: string[] = []): { pem: string; keyFile: string } {
  const name = `csr-${++counter}`;
  execFileSync(
    'openssl',
    ['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-subj', subject, '-out', `${name}.csr`, ...extra],
    { cwd: dir, stdio: 'pipe' },
  );
  return { pem: fs.readFileSync(path.join(dir, `${name}.csr`), 'utf8'), keyFile: path.join(dir, `${name}.key`) };
}

function opensslCsr(keyArgs: string[], subject: string, extra: string[] = []): string {
  return opensslCsrWithKey(keyArgs, subject, extra).pem;
}

const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const EC_P384 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'];
const RSA_2048 = ['-newkey', 'rsa:2048'];

function expectDomainError(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DomainError, `expected a DomainError, got ${String(err)}`);
    assert.equal(err.code, code, `code (message: ${err.message})`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

function derOf(pem: string): Buffer {
  const der = pemDecode(pem, ['CERTIFICATE REQUEST']);
  assert.ok(der);
  return der;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-csr-spec-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('parseCsr', () => {
  describe('accepts CSRs made by openssl', () => {
    const cases: { name: string; keyArgs: string[]; type: 'EC' | 'RSA'; description: string; bits: number }[] = [
      { name: 'EC P-256', keyArgs: EC_P256, type: 'EC', description: 'EC-P256', bits: 256 },
      { name: 'EC P-384', keyArgs: EC_P384, type: 'EC', description: 'EC-P384', bits: 384 },
      { name: 'RSA 2048', keyArgs: RSA_2048, type: 'RSA', description: 'RSA-2048', bits: 2048 },
    ];
    for (const { name, keyArgs, type, description, bits } of cases) {
      it(`accepts an ${name} CSR and returns its subject and SANs`, () => {
        const pem = opensslCsr(keyArgs, '/C=US/O=Acme Devices/OU=Sensors/CN=sensor-0042', [
          '-addext',
          'subjectAltName=DNS:sensor-0042.fleet.example.com,DNS:alt.example.com,IP:10.1.2.3,IP:2001:db8::7',
        ]);
        const csr = parseCsr(pem);
        assert.deepEqual(csr.subject, {
          country: 'US',
          organization: 'Acme Devices',
          organizationalUnit: 'Sensors',
          commonName: 'sensor-0042',
        });
        assert.deepEqual(csr.dnsNames, ['sensor-0042.fleet.example.com', 'alt.example.com']);
        assert.deepEqual(csr.ipAddresses, ['10.1.2.3', '2001:db8::7']);
        assert.equal(csr.publicKey.type, type);
        assert.equal(csr.publicKey.description, description);
        assert.equal(csr.publicKey.bits, bits);
      });
    }

    it('returns the DER SubjectPublicKeyInfo of the key that signed the CSR', () => {
      const { pem, keyFile } = opensslCsrWithKey(EC_P256, '/CN=spki-check');
      const csr = parseCsr(pem);
      const spki = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']);
      assert.deepEqual(csr.publicKeySpki, spki);
    });

    it('returns empty SAN lists when the CSR requests none', () => {
      const csr = parseCsr(opensslCsr(EC_P256, '/CN=thing-1'));
      assert.deepEqual(csr.subject, { commonName: 'thing-1' });
      assert.deepEqual(csr.dnsNames, []);
      assert.deepEqual(csr.ipAddresses, []);
    });

    it('accepts a CSR with an empty subject', () => {
      const csr = parseCsr(buildCsr({ dnsNames: ['api.example.com'] }));
      assert.deepEqual(csr.subject, {});
      assert.deepEqual(csr.dnsNames, ['api.example.com']);
    });

    it('accepts the NEW CERTIFICATE REQUEST label and CRLF line endings', () => {
      const pem = opensslCsr(EC_P256, '/CN=legacy-label')
        .replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST')
        .replace(/\n/g, '\r\n');
      assert.equal(parseCsr(pem).subject.commonName, 'legacy-label');
    });

    it('accepts a CSR signed with SHA-384', () => {
      const pem = opensslCsr(EC_P384, '/CN=sha384', ['-sha384']);
      assert.equal(parseCsr(pem).subject.commonName, 'sha384');
    });
  });

  describe('refuses malformed input', () => {
    const validPem = () => buildCsr({ commonName: 'thing-1' });
    const cases: { name: string; input: () => string; code: string }[] = [
      { name: 'an empty string', input: () => '', code: 'INVALID_CSR' },
      { name: 'text that is not PEM', input: () => 'hello, I am a certificate request', code: 'INVALID_CSR' },
      { name: 'raw base64 DER without PEM armour', input: () => derOf(validPem()).toString('base64'), code: 'INVALID_CSR' },
      {
        name: 'a PEM block with the wrong label (CERTIFICATE)',
        input: () => validPem().replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'),
        code: 'INVALID_CSR',
      },
      {
        name: 'a PEM block whose body is not base64',
        input: () => '-----BEGIN CERTIFICATE REQUEST-----\nnot*base64!\n-----END CERTIFICATE REQUEST-----\n',
        code: 'INVALID_CSR',
      },
      {
        name: 'a PEM block of random garbage',
        input: () => pemEncode('CERTIFICATE REQUEST', Buffer.from('a'.repeat(300))),
        code: 'INVALID_CSR',
      },
      {
        name: 'a PEM block holding a DER SEQUENCE that is not a CSR',
        input: () => pemEncode('CERTIFICATE REQUEST', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x05])),
        code: 'INVALID_CSR',
      },
      {
        name: 'truncated DER (last 10 bytes missing)',
        input: () => {
          const der = derOf(validPem());
          return pemEncode('CERTIFICATE REQUEST', der.subarray(0, der.length - 10));
        },
        code: 'INVALID_CSR',
      },
      {
        name: 'truncated DER (only the first 40 bytes)',
        input: () => pemEncode('CERTIFICATE REQUEST', derOf(validPem()).subarray(0, 40)),
        code: 'INVALID_CSR',
      },
      {
        name: 'DER with trailing bytes after the CSR',
        input: () => pemEncode('CERTIFICATE REQUEST', Buffer.concat([derOf(validPem()), Buffer.from([0, 0])])),
        code: 'INVALID_CSR',
      },
      {
        name: `input longer than ${MAX_CSR_PEM_LENGTH} characters`,
        input: () => `${'#'.repeat(MAX_CSR_PEM_LENGTH)}\n${validPem()}`,
        code: 'INVALID_CSR',
      },
    ];
    for (const { name, input, code } of cases) {
      it(`refuses ${name}`, () => expectDomainError(() => parseCsr(input()), code));
    }

    it('refuses oversize input before trying to parse it', () => {
      expectDomainError(() => parseCsr('x'.repeat(MAX_CSR_PEM_LENGTH + 1)), 'INVALID_CSR', /longer than 16384/);
    });
  });

  describe('takes exactly one PEM block, with only whitespace around it', () => {
    const first = () => buildCsr({ commonName: 'first-device' });
    const second = () => buildCsr({ commonName: 'second-device' });
    const refusals: { name: string; input: () => string; message: RegExp }[] = [
      { name: 'two CSR blocks (the first was silently used)', input: () => first() + second(), message: /^csr holds more than one PEM block; send exactly one$/ },
      { name: 'two CSR blocks separated by text', input: () => `${first()}and also\n${second()}`, message: /more than one PEM block/ },
      { name: 'a CSR followed by a certificate block', input: () => first() + pemEncode('CERTIFICATE', Buffer.from([0x30, 0x00])), message: /more than one PEM block/ },
      { name: 'text after the block', input: () => `${first()}trailing text`, message: /^csr has text after its PEM block; only whitespace may surround it$/ },
      { name: 'text before the block (RFC 7468 explanatory text)', input: () => `Subject: CN=first-device\n${first()}`, message: /^csr has text before its PEM block/ },
      { name: 'a stray dash after the END line', input: () => `${first().trimEnd()}-`, message: /text after its PEM block/ },
      { name: 'a block nested in another', input: () => first().replace('-----END', `${second()}-----END`), message: /inside another/ },
      { name: 'a BEGIN line without its END line', input: () => first().replace(/-----END[^]*$/, ''), message: /no "-----END CERTIFICATE REQUEST-----" line/ },
      { name: 'END naming another label', input: () => first().replace('END CERTIFICATE REQUEST', 'END CERTIFICATE'), message: /no "-----END CERTIFICATE REQUEST-----" line/ },
      { name: 'base64 with a character outside the alphabet', input: () => first().replace(/\n(.)/, '\n*$1'), message: /not valid base64/ },
      { name: 'base64 with padding in the middle', input: () => first().replace(/\n(.{4})/, '\n$1===='), message: /not valid base64/ },
      { name: 'a body on the BEGIN line', input: () => first().replace('-----\n', '-----'), message: /line break after its BEGIN line/ },
    ];
    for (const { name, input, message } of refusals) {
      it(`refuses ${name} (400 INVALID_CSR)`, () => expectDomainError(() => parseCsr(input()), 'INVALID_CSR', message));
    }

    it('accepts one block with whitespace around it and inside its base64', () => {
      const pem = first();
      assert.equal(parseCsr(`\n\n  ${pem}\n\t \r\n`).subject.commonName, 'first-device');
      assert.equal(parseCsr(pem.trimEnd()).subject.commonName, 'first-device', 'no final line break');
      const reflowed = pem.replace(/\n(?!-----)/g, '\n ').replace(/(.{40})(?=[A-Za-z0-9+/])/g, '$1\n');
      assert.equal(parseCsr(reflowed).subject.commonName, 'first-device');
    });
  });

  describe('refuses a CSR whose proof of possession fails', () => {
    const cases: { name: string; options: CsrOptions }[] = [
      { name: 'an EC P-256 CSR with a flipped signature bit', options: { key: 'ec:P-256', commonName: 'x', breakSignature: true } },
      { name: 'an RSA-2048 CSR with a flipped signature bit', options: { key: 'rsa:2048', commonName: 'x', breakSignature: true } },
    ];
    for (const { name, options } of cases) {
      it(`refuses ${name}`, () => expectDomainError(() => parseCsr(buildCsr(options)), 'CSR_SIGNATURE_INVALID'));
    }

    it('refuses a CSR whose subject was altered after signing', () => {
      const der = derOf(opensslCsr(EC_P256, '/CN=thing-aaaa'));
      const at = der.indexOf(Buffer.from('thing-aaaa'));
      assert.ok(at > 0);
      der.write('thing-bbbb', at, 'latin1');
      expectDomainError(() => parseCsr(pemEncode('CERTIFICATE REQUEST', der)), 'CSR_SIGNATURE_INVALID');
    });

    it('refuses a CSR signed by a different key than the one it carries', () => {
      // Swap in another CSR's signature: same algorithm, valid encoding, wrong key.
      const a = derOf(buildCsr({ commonName: 'same' }));
      const b = derOf(buildCsr({ commonName: 'same' }));
      // Both are P-256/SHA-256 CSRs; keep a's request info and algorithm, take b's signature.
      const sigA = lastTlv(a);
      const sigB = lastTlv(b);
      const spliced = reencodeOuter(Buffer.concat([a.subarray(firstContent(a), sigA), b.subarray(sigB)]));
      expectDomainError(() => parseCsr(pemEncode('CERTIFICATE REQUEST', spliced)), 'CSR_SIGNATURE_INVALID');
    });
  });

  describe('refuses keys outside the key policy', () => {
    const cases: { name: string; options: CsrOptions; code: string; message: RegExp }[] = [
      { name: 'RSA-1024', options: { key: 'rsa:1024' }, code: 'UNSUPPORTED_KEY', message: /at least 2048 bits, got 1024/ },
      { name: 'EC P-192 (prime192v1)', options: { key: 'ec:prime192v1' }, code: 'UNSUPPORTED_KEY', message: /prime192v1 is not allowed/ },
      { name: 'EC secp256k1', options: { key: 'ec:secp256k1' }, code: 'UNSUPPORTED_KEY', message: /secp256k1 is not allowed/ },
      // The key is checked before the signature algorithm, so an Ed25519 CSR is refused for its key.
      { name: 'Ed25519', options: { key: 'ed25519' }, code: 'UNSUPPORTED_KEY', message: /ed25519 keys are not accepted/ },
    ];
    for (const { name, options, code, message } of cases) {
      it(`refuses a CSR whose key is ${name}`, () => {
        const pem = buildCsr({ commonName: 'thing-1', ...options });
        assert.throws(() => parseCsr(pem), (err: unknown) => err instanceof DomainError && err.status === 422);
        expectDomainError(() => parseCsr(pem), code, message);
      });
    }

    it('refuses an RSA-1024 CSR made by openssl', () => {
      expectDomainError(() => parseCsr(opensslCsr(['-newkey', 'rsa:1024'], '/CN=weak')), 'UNSUPPORTED_KEY');
    });

    it('refuses a P-192 CSR made by openssl', () => {
      expectDomainError(() => parseCsr(opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime192v1'], '/CN=weak')), 'UNSUPPORTED_KEY');
    });
  });

  describe('refuses weak signature algorithms', () => {
    const cases: { name: string; options: CsrOptions; message: RegExp }[] = [
      { name: 'sha1WithRSAEncryption', options: { key: 'rsa:2048', hash: 'sha1' }, message: /sha1WithRSAEncryption/ },
      { name: 'ecdsa-with-SHA1', options: { key: 'ec:P-256', hash: 'sha1' }, message: /ecdsa-with-SHA1/ },
    ];
    for (const { name, options, message } of cases) {
      it(`refuses a CSR signed with ${name}`, () => {
        expectDomainError(() => parseCsr(buildCsr({ commonName: 'thing-1', ...options })), 'WEAK_SIGNATURE_ALGORITHM', message);
      });
    }

    it('refuses a SHA-1 CSR made by openssl', () => {
      expectDomainError(() => parseCsr(opensslCsr(RSA_2048, '/CN=sha1', ['-sha1'])), 'WEAK_SIGNATURE_ALGORITHM');
    });
  });

  describe('counts SAN types no profile grants, so the profiles that use SANs can refuse them', () => {
    const cases: [string, string][] = [
      ['an e-mail address', 'email:ops@example.com'],
      ['a URI', 'URI:https://example.com/device'],
    ];
    for (const [name, san] of cases) {
      it(`counts ${name} SAN and keeps the DNS one`, () => {
        const pem = opensslCsr(EC_P256, '/CN=api.example.com', ['-addext', `subjectAltName=DNS:api.example.com,${san}`]);
        const parsed = parseCsr(pem);
        assert.equal(parsed.otherNames, 1);
        assert.deepEqual(parsed.dnsNames, ['api.example.com']);
        expectDomainError(() => namesFor(findProfile('server'), parsed, undefined), 'SAN_NOT_ALLOWED');
        assert.equal(namesFor(findProfile('device'), parsed, 'thing-1').dnsNames.length, 0, 'the device profile copies no SANs');
      });
    }
  });

  describe('refuses unsafe subjects', () => {
    const cases: { name: string; commonName: string }[] = [
      { name: 'a NUL character', commonName: 'thing\u0000evil' },
      { name: 'a newline', commonName: 'thing\nevil' },
      { name: 'an escape character', commonName: 'thing\u001b[31m' },
      { name: 'DEL', commonName: 'thing\u007f' },
      { name: 'a C1 control character (NEL)', commonName: 'thing\u0085' },
    ];
    for (const { name, commonName } of cases) {
      it(`refuses a CN containing ${name}`, () => {
        expectDomainError(() => parseCsr(buildCsr({ commonName })), 'INVALID_SUBJECT', /control characters/);
      });
    }

    it('refuses an empty CN', () => {
      expectDomainError(() => parseCsr(buildCsr({ commonName: '' })), 'INVALID_SUBJECT', /empty/);
    });

    it('refuses a CN with leading or trailing spaces', () => {
      expectDomainError(() => parseCsr(buildCsr({ commonName: ' thing-1 ' })), 'INVALID_SUBJECT', /spaces/);
    });

    it('refuses a CN longer than 64 characters', () => {
      expectDomainError(() => parseCsr(buildCsr({ commonName: 'a'.repeat(65) })), 'INVALID_SUBJECT', /longer than 64/);
    });

    it('refuses a subject that repeats CN', () => {
      const pem = opensslCsr(EC_P256, '/CN=one/CN=two');
      expectDomainError(() => parseCsr(pem), 'INVALID_SUBJECT', /repeats commonName/);
    });
  });
});

// --- small DER helpers for splicing signatures -----------------------------------------------------------

function tlvLength(der: Buffer, offset: number): { contentStart: number; end: number } {
  const first = der[offset + 1];
  if (first < 0x80) return { contentStart: offset + 2, end: offset + 2 + first };
  const count = first & 0x7f;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i];
  return { contentStart: offset + 2 + count, end: offset + 2 + count + length };
}

function firstContent(der: Buffer): number {
  return tlvLength(der, 0).contentStart;
}

/** Offset of the last element (the signature BIT STRING) inside the outer SEQUENCE. */
function lastTlv(der: Buffer): number {
  let offset = firstContent(der);
  let last = offset;
  while (offset < der.length) {
    last = offset;
    offset = tlvLength(der, offset).end;
  }
  return last;
}

function reencodeOuter(content: Buffer): Buffer {
  const length = content.length;
  const header =
    length < 0x80
      ? Buffer.from([0x30, length])
      : length < 0x100
        ? Buffer.from([0x30, 0x81, length])
        : Buffer.from([0x30, 0x82, length >> 8, length & 0xff]);
  return Buffer.concat([header, content]);
}
