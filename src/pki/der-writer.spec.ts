import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AsnConvert } from '@peculiar/asn1-schema';
import { KeyUsage, KeyUsageFlags } from '@peculiar/asn1-x509';
import { decodeOid, readTlv } from './der';
import { namedBits, oid, smallInteger, time, unsignedInteger } from './der-writer';
import { ipBytes } from './extensions';

/** The hand-written DER encoder, checked against an independent ASN.1 library and known vectors. */
describe('DER writer', () => {
  for (const dotted of ['2.5.29.19', '1.2.840.10045.4.3.2', '1.3.6.1.5.5.7.48.2', '1.2.840.113549.1.9.14', '2.999.3']) {
    it(`round-trips the OID ${dotted}`, () => {
      const der = oid(dotted);
      assert.equal(decodeOid(der, readTlv(der, 0)), dotted);
    });
  }

  it('encodes INTEGERs minimally and positive', () => {
    assert.equal(unsignedInteger(Buffer.from([0x00, 0x00, 0x7f])).toString('hex'), '02017f');
    assert.equal(unsignedInteger(Buffer.from([0x80])).toString('hex'), '02020080');
    assert.equal(unsignedInteger(Buffer.from([0x00])).toString('hex'), '020100');
    assert.equal(smallInteger(0).toString('hex'), '020100');
    assert.equal(smallInteger(128).toString('hex'), '02020080');
    assert.equal(smallInteger(65536).toString('hex'), '0203010000');
  });

  it('uses long-form lengths from 128 bytes on', () => {
    const der = unsignedInteger(Buffer.alloc(200, 1));
    assert.equal(der.subarray(0, 3).toString('hex'), '0281c8');
    const big = unsignedInteger(Buffer.alloc(300, 1));
    assert.equal(big.subarray(0, 4).toString('hex'), '0282012c');
  });

  it('encodes times as UTCTime through 2049 and GeneralizedTime from 2050, whole seconds', () => {
    assert.equal(time(new Date('2049-12-31T23:59:59.999Z')).toString('latin1').slice(2), '491231235959Z');
    assert.equal(time(new Date('2049-12-31T23:59:59.999Z'))[0], 0x17);
    assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1').slice(2), '20500101000000Z');
    assert.equal(time(new Date('2050-01-01T00:00:00Z'))[0], 0x18);
    // Before 1950 a two-digit year would read a century late (found by issuance.property.spec.ts).
    assert.equal(time(new Date('1949-12-31T23:59:59Z')).toString('latin1').slice(2), '19491231235959Z');
    assert.equal(time(new Date('1950-01-01T00:00:00Z')).toString('latin1').slice(2), '500101000000Z');
  });

  const usages: KeyUsageFlags[][] = [
    [KeyUsageFlags.digitalSignature],
    [KeyUsageFlags.digitalSignature, KeyUsageFlags.keyEncipherment],
    [KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign],
    [KeyUsageFlags.digitalSignature, KeyUsageFlags.decipherOnly],
  ];
  for (const flags of usages) {
    it(`encodes KeyUsage ${flags.join('|')} exactly as @peculiar/asn1-x509 does`, () => {
      const reference = Buffer.from(AsnConvert.serialize(new KeyUsage(flags.reduce((a, b) => a | b, 0))));
      assert.equal(namedBits(flags.map((f) => Math.log2(f))).toString('hex'), reference.toString('hex'));
    });
  }

  const ips: [string, string][] = [
    ['192.0.2.42', 'c000022a'],
    ['2001:db8::7', '20010db8000000000000000000000007'],
    ['::1', '00000000000000000000000000000001'],
    ['fe80::1:2', 'fe800000000000000000000000010002'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
  ];
  for (const [ip, hex] of ips) {
    it(`encodes the iPAddress ${ip}`, () => assert.equal(ipBytes(ip).toString('hex'), hex));
  }
});
