import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { DomainError } from '../common/errors';
import { parseCsr } from './csr';
import { base64Lines, csrAttributeTypes, csrAttrs, KEY_ENCRYPTION_ATTRIBUTES, csrPemOfEstBody, csrSubjectAttributes, deviceSerialOf, EST_KEY_SPECS, generatedKeyAndCsr } from './est';

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof DomainError ? err.code : `not a DomainError: ${String(err)}`;
  }
}

describe('EST bodies (RFC 7030 §4.2.1)', () => {
  const { csrPem } = ssl.newCsr('ec:P-256', '/serialNumber=SN-1/CN=device-1');
  const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');

  it('reads base64 DER with or without line breaks, and a PEM block, as the same CSR', () => {
    for (const body of [der.toString('base64'), base64Lines(der), `  ${base64Lines(der).replace(/\r\n/g, '\n')}  `, csrPem]) {
      assert.deepEqual(parseCsr(csrPemOfEstBody(body)).publicKeySpki, parseCsr(csrPem).publicKeySpki);
    }
  });

  it('refuses an empty, non-base64, or oversized body as INVALID_CSR', () => {
    for (const body of ['', '   ', 'not base64!', 'abc', 'A'.repeat(30_000)]) assert.equal(code(() => csrPemOfEstBody(body)), 'INVALID_CSR', JSON.stringify(body.slice(0, 20)));
  });

  it('names the device by serialNumber, else by CN, else nothing', () => {
    assert.equal(deviceSerialOf(csrSubjectAttributes(csrPem)), 'SN-1');
    assert.equal(deviceSerialOf(csrSubjectAttributes(ssl.newCsr('ec:P-256', '/CN=device-2').csrPem)), 'device-2');
    assert.equal(deviceSerialOf(csrSubjectAttributes(ssl.newCsr('ec:P-256', '/O=Acme').csrPem)), undefined);
  });
});

describe('key encryption requests (RFC 7030 §4.4.1)', () => {
  it('finds the AsymmetricDecryptKeyIdentifier attribute a CSR carries', () => {
    const config = ssl.file('attrs.cnf', '[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n[dn]\nCN = x\n[attrs]\n1.2.840.113549.1.9.16.2.54 = station-key\n');
    const made = ssl.run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'attrs.key', '-config', config, '-out', 'attrs.csr']);
    assert.equal(made.status, 0, made.output);
    const types = csrAttributeTypes(readFileSync(ssl.file('attrs.csr'), 'utf8'));
    assert.deepEqual(types.filter((type) => KEY_ENCRYPTION_ATTRIBUTES[type]), ['1.2.840.113549.1.9.16.2.54']);
    assert.deepEqual(csrAttributeTypes(ssl.newCsr('ec:P-256', '/CN=y').csrPem).filter((type) => KEY_ENCRYPTION_ATTRIBUTES[type]), []);
  });
});

describe('CsrAttrs (RFC 7030 §4.5.2)', () => {
  it('names the key type, curve or size, signature algorithm and subject attributes, as openssl asn1parse reads them', () => {
    const cases: [(typeof EST_KEY_SPECS)[number], string[]][] = [
      ['EC_P256', ['id-ecPublicKey', 'prime256v1', 'ecdsa-with-SHA256', 'serialNumber', 'commonName']],
      ['EC_P384', ['id-ecPublicKey', 'secp384r1', 'ecdsa-with-SHA384', 'serialNumber', 'commonName']],
      ['RSA_2048', ['rsaEncryption', 'sha256WithRSAEncryption', 'serialNumber', 'commonName']],
    ];
    for (const [spec, names] of cases) {
      const file = ssl.file(`attrs-${spec}.der`, csrAttrs(spec, ['2.5.4.5', '2.5.4.3']));
      const parsed = ssl.run(['asn1parse', '-inform', 'DER', '-in', file]);
      assert.equal(parsed.status, 0, parsed.output);
      for (const name of names) assert.match(parsed.output, new RegExp(`:${name}\\s*$`, 'm'), `${spec}: ${name}\n${parsed.output}`);
      if (spec === 'RSA_2048') assert.match(parsed.output, /INTEGER\s+:0800/);
    }
  });
});

describe('serverkeygen keys', () => {
  it('makes an RSA-3072 key off the event loop, so other clients are served meanwhile (docs/fuzzing.md)', async () => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await Promise.all([generatedKeyAndCsr('RSA_3072', 'SN-LOOP-1'), generatedKeyAndCsr('RSA_3072', 'SN-LOOP-2')]);
    delay.disable();
    // Synchronous generation blocked for 0.7 to several seconds; this leaves room for a loaded machine.
    assert.ok(delay.max / 1e6 < 250, `the event loop was blocked for ${(delay.max / 1e6).toFixed(0)} ms`);
  });

  for (const spec of EST_KEY_SPECS) {
    it(`makes a ${spec} key and a CSR that our parser and openssl accept, naming the device`, async () => {
      const { csrPem, privateKeyPkcs8 } = await generatedKeyAndCsr(spec, 'SN-9');
      const parsed = parseCsr(csrPem);
      assert.equal(parsed.subject.commonName, 'SN-9');
      const key = createPrivateKey({ key: privateKeyPkcs8, format: 'der', type: 'pkcs8' });
      assert.deepEqual(createPublicKey(key).export({ format: 'der', type: 'spki' }), parsed.publicKeySpki);
      const checked = ssl.run(['req', '-in', ssl.file(`gen-${spec}.csr`, csrPem), '-noout', '-verify']);
      assert.equal(checked.status, 0, checked.output);
      assert.match(readFileSync(ssl.file(`gen-${spec}.csr`), 'utf8'), /^-----BEGIN CERTIFICATE REQUEST-----/);
    });
  }
});
