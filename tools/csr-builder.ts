import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import {
  AlgorithmIdentifier,
  Attribute,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Extension,
  Extensions,
  GeneralName,
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { pemEncode } from '../src/pki/der';

/**
 * Builds CSRs in-process: ones that openssl would refuse to make (NUL in the subject, SHA-1, odd curves), for the
 * bad-input tests, and plain ones fast enough for hundreds of devices, for the tests and the benchmark (which is why
 * it lives in tools/, not test/). Normal CSRs in the tests come from openssl itself.
 */
export type TestKey = 'ec:P-256' | 'ec:P-384' | 'ec:prime192v1' | 'ec:secp256k1' | 'rsa:1024' | 'rsa:2048' | 'ed25519';

export function testKeyPair(key: TestKey): { publicKey: KeyObject; privateKey: KeyObject } {
  if (key === 'ed25519') return generateKeyPairSync('ed25519');
  const [type, param] = key.split(':');
  return type === 'ec' ? generateKeyPairSync('ec', { namedCurve: param }) : generateKeyPairSync('rsa', { modulusLength: Number(param) });
}

const SIG_OIDS: Record<string, string> = {
  'ec:sha256': '1.2.840.10045.4.3.2',
  'ec:sha1': '1.2.840.10045.4.1',
  'rsa:sha256': '1.2.840.113549.1.1.11',
  'rsa:sha1': '1.2.840.113549.1.1.5',
  'ed25519:none': '1.3.101.112',
};

export interface CsrOptions {
  key?: TestKey;
  /** Use this key pair (of type `key`) instead of a fresh one. */
  keyPair?: { publicKey: KeyObject; privateKey: KeyObject };
  /** Raw CN (may contain anything, even NUL). */
  commonName?: string;
  hash?: 'sha256' | 'sha1';
  requestCa?: boolean;
  requestKeyUsages?: KeyUsageFlags[];
  dnsNames?: string[];
  /** Flip a bit in the signature after signing. */
  breakSignature?: boolean;
}

export function buildCsr(options: CsrOptions = {}): string {
  const keyName = options.key ?? 'ec:P-256';
  const { publicKey, privateKey } = options.keyPair ?? testKeyPair(keyName);
  const keyType = keyName.split(':')[0];
  const hash = keyType === 'ed25519' ? 'none' : options.hash ?? 'sha256';
  const rdns = options.commonName === undefined ? [] : [
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: options.commonName }) })]),
  ];
  const extensions: Extension[] = [];
  if (options.requestCa) {
    extensions.push(new Extension({ extnID: id_ce_basicConstraints, critical: true, extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: true }))) }));
  }
  if (options.requestKeyUsages) {
    const flags = options.requestKeyUsages.reduce((all, flag) => all | flag, 0);
    extensions.push(new Extension({ extnID: id_ce_keyUsage, critical: true, extnValue: new OctetString(AsnConvert.serialize(new KeyUsage(flags))) }));
  }
  if (options.dnsNames) {
    const names = new SubjectAlternativeName(options.dnsNames.map((dNSName) => new GeneralName({ dNSName })));
    extensions.push(new Extension({ extnID: id_ce_subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(names)) }));
  }
  const info = new CertificationRequestInfo({
    subject: new Name(rdns),
    subjectPKInfo: AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    attributes: new Attributes(
      extensions.length ? [new Attribute({ type: '1.2.840.113549.1.9.14', values: [AsnConvert.serialize(new Extensions(extensions))] })] : [],
    ),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const signature = sign(hash === 'none' ? null : hash, infoDer, privateKey);
  if (options.breakSignature) signature[signature.length - 5] ^= 0x01;
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: SIG_OIDS[`${keyType}:${hash}`], parameters: keyType === 'rsa' ? null : undefined }),
    signature: signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength) as ArrayBuffer,
  });
  return pemEncode('CERTIFICATE REQUEST', Buffer.from(AsnConvert.serialize(csr)));
}

/** A fresh EC P-256 device key and its CSR (CN given), made in-process: fast enough for hundreds of devices. */
export function deviceKeyAndCsr(commonName: string): { csrPem: string; privateKey: KeyObject } {
  const keyPair = testKeyPair('ec:P-256');
  return { csrPem: buildCsr({ commonName, keyPair }), privateKey: keyPair.privateKey };
}
