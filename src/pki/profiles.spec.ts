import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { DomainError } from '../common/errors';
import { ParsedCsr } from './csr';
import { checkPublicKey } from './key-policy';
import { SubjectFields } from './names';
import { OID } from './oids';
import { findProfile, listProfiles, namesFor } from './profiles';

const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
const publicKey = checkPublicKey(spki);

/** A parsed CSR as parseCsr would return it; the profile code only reads subject and SANs. */
function csr(subject: SubjectFields, dnsNames: string[] = [], ipAddresses: string[] = [], otherNames = 0): ParsedCsr {
  return { subject, publicKeySpki: spki, publicKey, dnsNames, ipAddresses, otherNames };
}

function expectDomainError(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DomainError, `expected a DomainError, got ${String(err)}`);
    assert.equal(err.code, code, `code (message: ${err.message})`);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('findProfile', () => {
  it('finds the device profile: clientAuth, digitalSignature', () => {
    const device = findProfile('device');
    assert.equal(device.name, 'device');
    assert.equal(device.subjectRule, 'thing-name');
    assert.deepEqual(device.extendedKeyUsage, [OID.clientAuth]);
    assert.deepEqual(device.keyUsage, [KeyUsageFlags.digitalSignature]);
    assert.ok(device.defaultValidityDays <= device.maxValidityDays);
  });

  it('finds the server profile: serverAuth, at most 397 days', () => {
    const server = findProfile('server');
    assert.equal(server.subjectRule, 'dns-ip-names');
    assert.deepEqual(server.extendedKeyUsage, [OID.serverAuth]);
    assert.equal(server.maxValidityDays, 397);
    assert.ok(server.defaultValidityDays <= server.maxValidityDays);
  });

  it('lists every profile findProfile knows', () => {
    assert.deepEqual(
      listProfiles().map((p) => p.name),
      ['device', 'server'],
    );
  });

  for (const name of ['nope', '', 'Device', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    it(`answers PROFILE_NOT_FOUND for ${JSON.stringify(name)}`, () => {
      expectDomainError(() => findProfile(name), 'PROFILE_NOT_FOUND', /known: device, server/);
    });
  }
});

describe('namesFor(device)', () => {
  const device = findProfile('device');

  it('uses the thing name as CN, ignoring the CSR CN and SANs', () => {
    const names = namesFor(device, csr({ commonName: 'something-else', organization: 'Acme' }, ['x.example.com'], ['10.0.0.1']), 'sensor-42');
    assert.deepEqual(names, { subject: { commonName: 'sensor-42' }, dnsNames: [], ipAddresses: [], thingName: 'sensor-42' });
  });

  it('uses the CSR CN when no thing name is given', () => {
    const names = namesFor(device, csr({ commonName: 'gateway:eu-1_A' }), undefined);
    assert.deepEqual(names, { subject: { commonName: 'gateway:eu-1_A' }, dnsNames: [], ipAddresses: [], thingName: 'gateway:eu-1_A' });
  });

  it('keeps only the CN from the CSR subject', () => {
    const names = namesFor(device, csr({ country: 'US', organization: 'Evil Corp', commonName: 'thing-1' }), undefined);
    assert.deepEqual(names.subject, { commonName: 'thing-1' });
  });

  it('refuses a request with neither a thing name nor a CSR CN', () => {
    expectDomainError(() => namesFor(device, csr({ organization: 'Acme' }), undefined), 'INVALID_SUBJECT', /thingName or a CSR common name/);
  });

  it('accepts a 64-character thing name', () => {
    assert.equal(namesFor(device, csr({}), 'a'.repeat(64)).thingName, 'a'.repeat(64));
  });

  const invalid: [string, string][] = [
    ['empty', ''],
    ['with a space', 'my thing'],
    ['with a slash', 'fleet/thing'],
    ['with a dot', 'thing.1'],
    ['with a non-ASCII letter', 'capteur-é'],
    ['65 characters long', 'a'.repeat(65)],
    ['with a NUL', 'thing\u0000'],
    ['with a trailing newline', 'thing-1\n'],
  ];
  for (const [name, value] of invalid) {
    it(`refuses a thing name ${name}`, () => {
      expectDomainError(() => namesFor(device, csr({ commonName: 'valid-cn' }), value), 'INVALID_SUBJECT');
    });
    it(`refuses a CSR CN ${name} when no thing name is given`, () => {
      expectDomainError(() => namesFor(device, csr({ commonName: value }), undefined), 'INVALID_SUBJECT');
    });
  }
});

describe('namesFor(server)', () => {
  const server = findProfile('server');

  it('takes DNS and IP SANs from the CSR, CN = first DNS name', () => {
    const names = namesFor(server, csr({ commonName: 'api.example.com' }, ['api.example.com', 'www.example.com'], ['192.0.2.10', '2001:db8::1']), undefined);
    assert.deepEqual(names, {
      subject: { commonName: 'api.example.com' },
      dnsNames: ['api.example.com', 'www.example.com'],
      ipAddresses: ['192.0.2.10', '2001:db8::1'],
    });
  });

  it('ignores any thing name and never sets one', () => {
    const names = namesFor(server, csr({}, ['api.example.com']), 'sensor-1');
    assert.equal(names.thingName, undefined);
    assert.deepEqual(names.subject, { commonName: 'api.example.com' });
  });

  it('adds a host-name CN to the DNS names', () => {
    const names = namesFor(server, csr({ commonName: 'cn.example.com' }, ['san.example.com']), undefined);
    assert.deepEqual(names.dnsNames, ['cn.example.com', 'san.example.com']);
  });

  it('treats an IP-address CN as an IP SAN', () => {
    const names = namesFor(server, csr({ commonName: '192.0.2.7' }), undefined);
    assert.deepEqual(names, { subject: { commonName: '192.0.2.7' }, dnsNames: [], ipAddresses: ['192.0.2.7'] });
  });

  it('lower-cases DNS names and drops duplicates', () => {
    const names = namesFor(server, csr({ commonName: 'API.Example.COM' }, ['api.example.com', 'Api.Example.Com', 'b.example.com']), undefined);
    assert.deepEqual(names.dnsNames, ['api.example.com', 'b.example.com']);
  });

  it('uses only the CN from the CSR subject', () => {
    const names = namesFor(server, csr({ organization: 'Evil Corp', commonName: 'api.example.com' }), undefined);
    assert.deepEqual(names.subject, { commonName: 'api.example.com' });
  });

  it('requires at least one DNS name or IP address', () => {
    expectDomainError(() => namesFor(server, csr({}), undefined), 'SAN_NOT_ALLOWED', /at least one/);
    expectDomainError(() => namesFor(server, csr({ organization: 'Acme' }), undefined), 'SAN_NOT_ALLOWED', /at least one/);
  });

  it('refuses more than 100 names', () => {
    const many = Array.from({ length: 101 }, (_, i) => `host${i}.example.com`);
    expectDomainError(() => namesFor(server, csr({}, many), undefined), 'SAN_NOT_ALLOWED', /at most 100/);
    assert.equal(namesFor(server, csr({}, many.slice(0, 100)), undefined).dnsNames.length, 100);
  });

  const badNames: [string, string, RegExp][] = [
    ['a wildcard', '*.example.com', /wildcard/],
    ['an upper-case wildcard', '*.EXAMPLE.com', /wildcard/],
    ['a single-label name (localhost)', 'localhost', /fully qualified/],
    ['a single-label name (server)', 'server', /fully qualified/],
    ['a name with an underscore', 'bad_name.example.com', /fully qualified/],
    ['a label starting with a hyphen', '-lead.example.com', /fully qualified/],
    ['a label ending with a hyphen', 'trail-.example.com', /fully qualified/],
    ['an empty label', 'a..example.com', /fully qualified/],
    ['a trailing dot', 'example.com.', /fully qualified/],
    ['a label of 64 characters', `${'a'.repeat(64)}.example.com`, /fully qualified/],
    ['a name longer than 253 characters', `${Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.')}.com`, /fully qualified/],
    ['a wildcard in the middle', 'api.*.example.com', /fully qualified/],
    ['a space', 'api example.com', /fully qualified/],
    ['a non-ASCII name', 'bücher.example.com', /fully qualified/],
  ];
  for (const [name, value, message] of badNames) {
    it(`refuses a DNS SAN that is ${name}`, () => {
      expectDomainError(() => namesFor(server, csr({}, ['ok.example.com', value]), undefined), 'SAN_NOT_ALLOWED', message);
    });
  }

  it('ignores a CN that is not a host name, using the SANs only', () => {
    const names = namesFor(server, csr({ commonName: 'My Web Server' }, ['api.example.com']), undefined);
    assert.deepEqual(names.dnsNames, ['api.example.com']);
    assert.deepEqual(names.subject, { commonName: 'api.example.com' });
  });

  it('puts the first name of at most 64 characters in the CN, never a truncated one', () => {
    const long = `${'a'.repeat(60)}.${'b'.repeat(10)}.example.com`;
    const names = namesFor(server, csr({}, [long, 'short.example.com']), undefined);
    assert.deepEqual(names.subject, { commonName: 'short.example.com' });
    assert.deepEqual(names.dnsNames, [long, 'short.example.com']);
    expectDomainError(() => namesFor(server, csr({}, [long]), undefined), 'SAN_NOT_ALLOWED', /64 characters/);
  });

  it('refuses a wildcard CN', () => {
    expectDomainError(() => namesFor(server, csr({ commonName: '*.example.com' }, ['api.example.com']), undefined), 'SAN_NOT_ALLOWED', /wildcard/);
  });

  it('accepts a 63-character label and punycode names', () => {
    const names = namesFor(server, csr({}, [`${'a'.repeat(63)}.example.com`, 'xn--bcher-kva.example.com']), undefined);
    assert.equal(names.dnsNames.length, 2);
  });

  it('refuses SAN types other than DNS and IP (e.g. URI, email)', () => {
    expectDomainError(() => namesFor(server, csr({}, ['api.example.com'], [], 1), undefined), 'SAN_NOT_ALLOWED', /only DNS and IP/);
  });

  it('refuses an IP SAN that is not an address (e.g. a CIDR range)', () => {
    expectDomainError(() => namesFor(server, csr({}, [], ['10.0.0.0/8']), undefined), 'SAN_NOT_ALLOWED', /IP address/);
  });
});
