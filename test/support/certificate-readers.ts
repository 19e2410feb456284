import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate as AsnCertificate, Name as AsnName, Time as AsnTime } from '@peculiar/asn1-x509';
import {
  AuthorityInfoAccessExtension,
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  CertificatePolicyExtension,
  CRLDistributionPointsExtension,
  ExtendedKeyUsageExtension,
  GeneralName as X509GeneralName,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from '../../src/pki/x509-library';
import * as pkijs from 'pkijs';

/**
 * Two independent readings of a certificate — @peculiar/x509 and pkijs, neither sharing code with our DER encoder —
 * brought to one comparable shape, and a comparison that names every field that differs. The equivalence property
 * test (src/pki/issuance.property.spec.ts) compares them with what the profile decided.
 */

export type StringType = 'UTF8String' | 'PrintableString' | 'IA5String' | 'TeletexString' | 'BMPString' | 'UniversalString' | 'other';

export interface NameAttribute {
  oid: string;
  type: StringType;
  value: string;
}

export interface TimeReading {
  /** RFC 3339 with milliseconds, as Date.toISOString gives it. */
  at: string;
  encoding: 'UTCTime' | 'GeneralizedTime';
}

export interface AlgorithmReading {
  oid: string;
  /** The parameters' DER as hex, or null when absent. */
  parameters: string | null;
}

export type SanEntry = { type: 'dns' | 'ip' | 'uri' | 'email' | 'other'; value: string };

/** Extension values as both readers report them (unknown ones: the extnValue content as hex). */
export interface ExtensionReading {
  critical: boolean;
  value: unknown;
}

export interface CertificateReading {
  /** 3 for v3. */
  version: number;
  /** The INTEGER's content octets, lowercase hex (a leading 00 pad included: it would be an encoding error here). */
  serial: string;
  /** The TBSCertificate's signature field and the outer signatureAlgorithm (RFC 5280 §4.1.1.2: identical). */
  tbsSignatureAlgorithm: AlgorithmReading;
  signatureAlgorithm: AlgorithmReading;
  issuer: NameAttribute[];
  subject: NameAttribute[];
  notBefore: TimeReading;
  notAfter: TimeReading;
  /** SubjectPublicKeyInfo DER, hex. */
  subjectPublicKeyInfo: string;
  /** Every extension's OID, sorted (a duplicate shows twice). */
  extensionOids: string[];
  extensions: Record<string, ExtensionReading>;
  /** The signature verifies with the issuer certificate's key (the library's own verification). */
  signatureVerifies: boolean;
}

export interface CertificateReader {
  name: string;
  read(der: Buffer, issuerDer: Buffer): Promise<CertificateReading>;
}

export const OIDS = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  cRLDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  certificatePolicies: '2.5.29.32',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  adOcsp: '1.3.6.1.5.5.7.48.1',
  adCaIssuers: '1.3.6.1.5.5.7.48.2',
} as const;

/** KeyUsage bit names in bit order (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_NAMES = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];

/**
 * asn1js (under both libraries) writes an OID arc too large for a JS number as its base-128 digits in hex between
 * braces, e.g. the claim policy 2.25.208431…003 as "2.25.{02394e…6b}"; this turns such an arc back into decimal.
 */
export function normalizeOid(oid: string): string {
  return oid.replace(/\{([0-9a-f]+)\}/g, (_, digits: string) => Buffer.from(digits, 'hex').reduce((value, digit) => value * 128n + BigInt(digit & 0x7f), 0n).toString());
}

const hex = (bytes: ArrayBuffer | ArrayBufferView): string =>
  Buffer.from(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('hex');

/** An IP address in one canonical text form (the WHATWG URL host serialiser), whatever form it was written in. */
export function canonicalIp(text: string): string {
  return new URL(`http://${text.includes(':') ? `[${text}]` : text}/`).hostname;
}

function ipFromOctets(octets: Buffer): string {
  if (octets.length === 4) return canonicalIp([...octets].join('.'));
  if (octets.length === 16) return canonicalIp(Array.from({ length: 8 }, (_, i) => octets.readUInt16BE(i * 2).toString(16)).join(':'));
  return `invalid ${octets.length}-octet address ${octets.toString('hex')}`;
}

// ---- @peculiar/x509 -----------------------------------------------------------------------------------------------

/** Encoding details X509Certificate does not expose (time and string types) come from the same library's ASN.1 layer. */
function peculiarNames(name: AsnName): NameAttribute[] {
  return name.flatMap((rdn) => {
    if (rdn.length !== 1) return [{ oid: 'multi-valued RDN', type: 'other' as const, value: String(rdn.length) }];
    const { type, value } = rdn[0];
    const [stringType, text]: [StringType, string | undefined] = value.utf8String !== undefined ? ['UTF8String', value.utf8String]
      : value.printableString !== undefined ? ['PrintableString', value.printableString]
      : value.ia5String !== undefined ? ['IA5String', value.ia5String]
      : value.teletexString !== undefined ? ['TeletexString', value.teletexString]
      : value.bmpString !== undefined ? ['BMPString', value.bmpString]
      : value.universalString !== undefined ? ['UniversalString', value.universalString]
      : ['other', undefined];
    return [{ oid: normalizeOid(type), type: stringType, value: text ?? '' }];
  });
}

function peculiarTime(time: AsnTime): TimeReading {
  return time.utcTime ? { at: time.utcTime.toISOString(), encoding: 'UTCTime' } : { at: time.generalTime!.toISOString(), encoding: 'GeneralizedTime' };
}

function peculiarGeneralName(name: X509GeneralName): SanEntry {
  switch (name.type) {
    case 'dns':
      return { type: 'dns', value: name.value };
    case 'ip':
      return { type: 'ip', value: canonicalIp(name.value) };
    case 'url':
      return { type: 'uri', value: name.value };
    case 'email':
      return { type: 'email', value: name.value };
    default:
      return { type: 'other', value: `${name.type}:${name.value}` };
  }
}

function peculiarExtensionValue(certificate: X509Certificate, oid: string, raw: ArrayBuffer): unknown {
  switch (oid) {
    case OIDS.basicConstraints: {
      const ext = certificate.getExtension(BasicConstraintsExtension)!;
      return { ca: ext.ca, pathLength: ext.pathLength ?? null };
    }
    case OIDS.keyUsage: {
      const usages = certificate.getExtension(KeyUsagesExtension)!.usages;
      return KEY_USAGE_NAMES.filter((_, bit) => usages & (1 << bit));
    }
    case OIDS.extKeyUsage:
      return [...certificate.getExtension(ExtendedKeyUsageExtension)!.usages].map((usage) => normalizeOid(String(usage)));
    case OIDS.subjectKeyIdentifier:
      return certificate.getExtension(SubjectKeyIdentifierExtension)!.keyId.toLowerCase();
    case OIDS.authorityKeyIdentifier: {
      const ext = certificate.getExtension(AuthorityKeyIdentifierExtension)!;
      return { keyIdentifier: ext.keyId?.toLowerCase() ?? null, ...(ext.certId ? { certId: 'present' } : {}) };
    }
    case OIDS.subjectAltName:
      return certificate.getExtension(SubjectAlternativeNameExtension)!.names.items.map(peculiarGeneralName);
    case OIDS.cRLDistributionPoints:
      return certificate.getExtension(CRLDistributionPointsExtension)!.distributionPoints.flatMap((point) =>
        point.reasons || point.cRLIssuer || !point.distributionPoint?.fullName
          ? ['a distribution point other than one fullName']
          : point.distributionPoint.fullName.map((name) => name.uniformResourceIdentifier ?? 'a name other than a URI'),
      );
    case OIDS.authorityInfoAccess: {
      const ext = certificate.getExtension(AuthorityInfoAccessExtension)!;
      const entries = (method: string, names: X509GeneralName[]) => names.map((name) => ({ method, uri: name.type === 'url' ? name.value : `${name.type}:${name.value}` }));
      return [...entries(OIDS.adOcsp, ext.ocsp), ...entries(OIDS.adCaIssuers, ext.caIssuers), ...entries('other', [...ext.timeStamping, ...ext.caRepository])];
    }
    case OIDS.certificatePolicies:
      return certificate.getExtension(CertificatePolicyExtension)!.policies.map(normalizeOid);
    default:
      return hex(raw);
  }
}

export const peculiarReader: CertificateReader = {
  name: '@peculiar/x509',
  async read(der, issuerDer) {
    const certificate = new X509Certificate(der);
    const asn = AsnConvert.parse(der, AsnCertificate);
    // The ASN.1 layer reads NULL parameters as null and absent ones as undefined.
    const algorithm = ({ algorithm: oid, parameters }: AsnCertificate['signatureAlgorithm']): AlgorithmReading => ({
      oid: normalizeOid(oid),
      parameters: parameters === undefined ? null : parameters === null ? '0500' : hex(parameters),
    });
    const extensions: Record<string, ExtensionReading> = {};
    for (const extension of certificate.extensions) {
      extensions[normalizeOid(extension.type)] = { critical: extension.critical, value: peculiarExtensionValue(certificate, extension.type, extension.value) };
    }
    let signatureVerifies = false;
    try {
      signatureVerifies = await certificate.verify({ publicKey: new X509Certificate(issuerDer), signatureOnly: true });
    } catch {
      signatureVerifies = false;
    }
    return {
      version: asn.tbsCertificate.version + 1,
      serial: certificate.serialNumber.toLowerCase(),
      tbsSignatureAlgorithm: algorithm(asn.tbsCertificate.signature),
      signatureAlgorithm: algorithm(asn.signatureAlgorithm),
      issuer: peculiarNames(asn.tbsCertificate.issuer),
      subject: peculiarNames(asn.tbsCertificate.subject),
      notBefore: peculiarTime(asn.tbsCertificate.validity.notBefore),
      notAfter: peculiarTime(asn.tbsCertificate.validity.notAfter),
      subjectPublicKeyInfo: hex(certificate.publicKey.rawData),
      extensionOids: certificate.extensions.map((extension) => normalizeOid(extension.type)).sort(),
      extensions,
      signatureVerifies,
    };
  },
};

// ---- pkijs --------------------------------------------------------------------------------------------------------

/** What pkijs hands back from asn1js for primitive values (asn1js is pkijs's own dependency, not ours). */
interface AsnPrimitive {
  idBlock: { tagNumber: number };
  valueBlock: { valueHexView: Uint8Array; value?: unknown; unusedBits?: number };
  toBER(): ArrayBuffer;
}

const STRING_TAGS: Record<number, StringType> = { 12: 'UTF8String', 19: 'PrintableString', 22: 'IA5String', 20: 'TeletexString', 30: 'BMPString', 28: 'UniversalString' };

function pkijsNames(names: pkijs.RelativeDistinguishedNames): NameAttribute[] {
  return names.typesAndValues.map((attribute) => {
    const value = attribute.value as unknown as AsnPrimitive;
    return { oid: normalizeOid(attribute.type), type: STRING_TAGS[value.idBlock.tagNumber] ?? 'other', value: String(value.valueBlock.value ?? '') };
  });
}

function pkijsTime(time: pkijs.Time): TimeReading {
  return { at: time.value.toISOString(), encoding: time.type === 0 ? 'UTCTime' : 'GeneralizedTime' };
}

function pkijsGeneralName(name: pkijs.GeneralName): SanEntry {
  switch (name.type) {
    case 1:
      return { type: 'email', value: String(name.value) };
    case 2:
      return { type: 'dns', value: String(name.value) };
    case 6:
      return { type: 'uri', value: String(name.value) };
    case 7:
      return { type: 'ip', value: ipFromOctets(Buffer.from((name.value as AsnPrimitive).valueBlock.valueHexView)) };
    default:
      return { type: 'other', value: `GeneralName [${name.type}]` };
  }
}

/** A named-bit BIT STRING's bits, and whether its encoding is DER (no trailing zero bits, X.690 §11.2.2). */
function pkijsNamedBits(bits: AsnPrimitive): string[] | string {
  const bytes = bits.valueBlock.valueHexView;
  const unused = bits.valueBlock.unusedBits ?? 0;
  const set = KEY_USAGE_NAMES.filter((_, bit) => bit < bytes.length * 8 && bytes[bit >> 3] & (0x80 >> (bit & 7)));
  const lastBit = bytes.length * 8 - 1 - unused;
  const minimal = bytes.length === 0 ? unused === 0 : lastBit >= 0 && (bytes[lastBit >> 3] & (0x80 >> (lastBit & 7))) !== 0;
  return minimal ? set : `not DER: ${bytes.length} bytes with ${unused} unused bits, bits ${set.join(',')}`;
}

function pkijsExtensionValue(extension: pkijs.Extension): unknown {
  const parsed = extension.parsedValue as unknown;
  if (parsed && typeof parsed === 'object' && 'parsingError' in parsed && (parsed as { parsingError?: string }).parsingError) {
    return `pkijs could not parse it: ${(parsed as { parsingError: string }).parsingError}`;
  }
  switch (extension.extnID) {
    case OIDS.basicConstraints: {
      const value = parsed as pkijs.BasicConstraints;
      const pathLength = value.pathLenConstraint;
      return { ca: value.cA, pathLength: pathLength === undefined ? null : typeof pathLength === 'number' ? pathLength : Number(pathLength.valueBlock.valueDec) };
    }
    case OIDS.keyUsage:
      return pkijsNamedBits(parsed as AsnPrimitive);
    case OIDS.extKeyUsage:
      return (parsed as pkijs.ExtKeyUsage).keyPurposes.map(normalizeOid);
    case OIDS.subjectKeyIdentifier:
      return hex((parsed as AsnPrimitive).valueBlock.valueHexView);
    case OIDS.authorityKeyIdentifier: {
      const value = parsed as pkijs.AuthorityKeyIdentifier;
      return {
        keyIdentifier: value.keyIdentifier ? hex(value.keyIdentifier.valueBlock.valueHexView) : null,
        ...(value.authorityCertIssuer || value.authorityCertSerialNumber ? { certId: 'present' } : {}),
      };
    }
    case OIDS.subjectAltName:
      return (parsed as pkijs.AltName).altNames.map(pkijsGeneralName);
    case OIDS.cRLDistributionPoints:
      return (parsed as pkijs.CRLDistributionPoints).distributionPoints.flatMap((point) =>
        point.reasons || point.cRLIssuer || !Array.isArray(point.distributionPoint)
          ? ['a distribution point other than one fullName']
          : point.distributionPoint.map((name) => (name.type === 6 ? String(name.value) : 'a name other than a URI')),
      );
    case OIDS.authorityInfoAccess:
      return (parsed as pkijs.InfoAccess).accessDescriptions.map((description) => ({
        method: [OIDS.adOcsp, OIDS.adCaIssuers].includes(description.accessMethod as never) ? description.accessMethod : 'other',
        uri: description.accessLocation.type === 6 ? String(description.accessLocation.value) : `GeneralName [${description.accessLocation.type}]`,
      }));
    case OIDS.certificatePolicies:
      return (parsed as pkijs.CertificatePolicies).certificatePolicies.map((policy) => normalizeOid(policy.policyIdentifier) + (policy.policyQualifiers ? ' with qualifiers' : ''));
    default:
      return hex(extension.extnValue.valueBlock.valueHexView);
  }
}

function pkijsAlgorithm(identifier: pkijs.AlgorithmIdentifier): AlgorithmReading {
  const params = identifier.algorithmParams as AsnPrimitive | undefined;
  const der = params && typeof params.toBER === 'function' ? Buffer.from(params.toBER()) : Buffer.alloc(0);
  return { oid: normalizeOid(identifier.algorithmId), parameters: der.length ? der.toString('hex') : null };
}

export const pkijsReader: CertificateReader = {
  name: 'pkijs',
  async read(der, issuerDer) {
    const certificate = pkijs.Certificate.fromBER(der);
    const extensions: Record<string, ExtensionReading> = {};
    for (const extension of certificate.extensions ?? []) extensions[normalizeOid(extension.extnID)] = { critical: extension.critical, value: pkijsExtensionValue(extension) };
    let signatureVerifies = false;
    try {
      signatureVerifies = await certificate.verify(pkijs.Certificate.fromBER(issuerDer));
    } catch {
      signatureVerifies = false;
    }
    return {
      version: certificate.version + 1,
      serial: hex(certificate.serialNumber.valueBlock.valueHexView),
      tbsSignatureAlgorithm: pkijsAlgorithm(certificate.signature),
      signatureAlgorithm: pkijsAlgorithm(certificate.signatureAlgorithm),
      issuer: pkijsNames(certificate.issuer),
      subject: pkijsNames(certificate.subject),
      notBefore: pkijsTime(certificate.notBefore),
      notAfter: pkijsTime(certificate.notAfter),
      subjectPublicKeyInfo: hex(certificate.subjectPublicKeyInfo.toSchema().toBER()),
      extensionOids: (certificate.extensions ?? []).map((extension) => normalizeOid(extension.extnID)).sort(),
      extensions,
      signatureVerifies,
    };
  },
};

export const READERS: CertificateReader[] = [peculiarReader, pkijsReader];

// ---- comparison ---------------------------------------------------------------------------------------------------

/** Every place where `actual` differs from `expected`, as "path: expected …, read …" lines (empty: identical). */
export function differences(expected: unknown, actual: unknown, path = ''): string[] {
  const show = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) return [`${path}: expected ${show(expected)}, read ${show(actual)}`];
    return expected.flatMap((item, i) => differences(item, actual[i], `${path}[${i}]`));
  }
  if (isObject(expected) && isObject(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
    return keys.flatMap((key) => differences(expected[key], actual[key], path ? `${path}.${key}` : key));
  }
  return Object.is(expected, actual) ? [] : [`${path}: expected ${show(expected)}, read ${show(actual)}`];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
