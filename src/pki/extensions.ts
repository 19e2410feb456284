import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { readTlv } from './der';
import {
  explicit,
  implicitConstructed,
  implicitPrimitive,
  namedBits,
  octetString,
  oid,
  sequence,
  smallInteger,
  TRUE,
} from './der-writer';
import { OID } from './oids';

/** Builders for the X.509 v3 extensions our profiles use (RFC 5280 §4.2), encoded straight to DER. */

export interface EncodedExtension {
  extnID: string;
  critical: boolean;
  /** The DER inside extnValue's OCTET STRING. */
  value: Buffer;
  /** The whole Extension: SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }. */
  der: Buffer;
}

export const EXTENSION_OIDS = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  cRLReason: '2.5.29.21',
  cRLDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  certificatePolicies: '2.5.29.32',
} as const;

/** certificatePolicies: SEQUENCE OF PolicyInformation { policyIdentifier } (no qualifiers). */
export function certificatePolicies(policyOids: string[]): EncodedExtension {
  return extension(EXTENSION_OIDS.certificatePolicies, false, sequence(...policyOids.map((policy) => sequence(oid(policy)))));
}

export function extension(extnID: string, critical: boolean, value: Buffer): EncodedExtension {
  // DER: a critical flag of FALSE is the default and is omitted (X.690 §11.5).
  return { extnID, critical, value, der: sequence(oid(extnID), ...(critical ? [TRUE] : []), octetString(value)) };
}

/** cA is omitted when FALSE (DEFAULT), so a leaf's value is an empty SEQUENCE. */
export function basicConstraints(ca: boolean, pathLength?: number): EncodedExtension {
  const parts = ca ? [TRUE, ...(pathLength === undefined ? [] : [smallInteger(pathLength)])] : [];
  return extension(EXTENSION_OIDS.basicConstraints, true, sequence(...parts));
}

export function keyUsage(flags: KeyUsageFlags[]): EncodedExtension {
  return extension(EXTENSION_OIDS.keyUsage, true, namedBits(flags.map((flag) => Math.log2(flag))));
}

export function extendedKeyUsage(oids: string[]): EncodedExtension {
  return extension(EXTENSION_OIDS.extKeyUsage, false, sequence(...oids.map(oid)));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value (without its unused-bits byte). */
export function keyIdentifier(spki: Buffer): Buffer {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.contentStart);
  const key = readTlv(spki, algorithm.end);
  if (key.tag !== 0x03) throw new Error('SubjectPublicKeyInfo without a BIT STRING key');
  return createHash('sha1').update(spki.subarray(key.contentStart + 1, key.end)).digest();
}

export function subjectKeyIdentifier(keyId: Buffer): EncodedExtension {
  return extension(EXTENSION_OIDS.subjectKeyIdentifier, false, octetString(keyId));
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }. */
export function authorityKeyIdentifier(issuerKeyId: Buffer): EncodedExtension {
  return extension(EXTENSION_OIDS.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, issuerKeyId)));
}

/** One distribution point with a fullName URI: [0] DistributionPointName { [0] fullName { [6] URI } }. */
export function crlDistributionPoint(url: string): EncodedExtension {
  const uri = implicitPrimitive(6, Buffer.from(url, 'latin1'));
  return extension(EXTENSION_OIDS.cRLDistributionPoints, false, sequence(sequence(explicit(0, implicitConstructed(0, uri)))));
}

/** id-ad-ocsp (RFC 5280 §4.2.2.1). */
const ID_AD_OCSP = '1.3.6.1.5.5.7.48.1';

/**
 * AuthorityInfoAccess (RFC 5280 §4.2.2.1): the OCSP responder (id-ad-ocsp), when given, then the issuer's
 * certificate (id-ad-caIssuers), each an AccessDescription with a URI GeneralName.
 */
export function authorityInfoAccess(caIssuersUrl: string, ocspUrl?: string): EncodedExtension {
  const uri = (url: string) => implicitPrimitive(6, Buffer.from(url, 'latin1'));
  const descriptions = [
    ...(ocspUrl === undefined ? [] : [sequence(oid(ID_AD_OCSP), uri(ocspUrl))]),
    sequence(oid(OID.caIssuers), uri(caIssuersUrl)),
  ];
  return extension(EXTENSION_OIDS.authorityInfoAccess, false, sequence(...descriptions));
}


/** SAN is critical only when the subject is empty (RFC 5280 §4.2.1.6); our subjects always carry a CN. */
export function subjectAltName(dnsNames: string[], ipAddresses: string[]): EncodedExtension {
  const names = [
    ...dnsNames.map((name) => implicitPrimitive(2, Buffer.from(name, 'latin1'))),
    ...ipAddresses.map((ip) => implicitPrimitive(7, ipBytes(ip))),
  ];
  return extension(EXTENSION_OIDS.subjectAltName, false, sequence(...names));
}

/** An IP address as the 4 or 16 octets of an iPAddress GeneralName. */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}
