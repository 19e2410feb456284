import { verify as verifySignature } from 'node:crypto';
import { DomainError, Errors } from '../common/errors';
import { children, content, decodeOid, decodeSinglePem, decodeString, PemError, readTlv, Tlv } from './der';
import { checkPublicKey, PublicKeyInfo } from './key-policy';
import { CONTROL_CHARS } from '../common/text';
import { SubjectFields, subjectFieldProblem } from './names';
import { OID } from './oids';

/** The parts of a CSR that issuance may use. Nothing else from the request reaches a certificate. */
export interface ParsedCsr {
  subject: SubjectFields;
  publicKeySpki: Buffer;
  publicKey: PublicKeyInfo;
  dnsNames: string[];
  ipAddresses: string[];
  /** Requested SANs of other types (URI, email, …); no profile grants them. */
  otherNames: number;
}

/** Signature algorithms accepted on a CSR (proof of possession): SHA-256 or stronger, RSA PKCS#1 v1.5 or ECDSA. */
const SIGNATURE_HASHES: Record<string, { hash: string; keyType: 'RSA' | 'EC' }> = {
  [OID.sha256WithRsa]: { hash: 'sha256', keyType: 'RSA' },
  [OID.sha384WithRsa]: { hash: 'sha384', keyType: 'RSA' },
  [OID.sha512WithRsa]: { hash: 'sha512', keyType: 'RSA' },
  [OID.ecdsaWithSha256]: { hash: 'sha256', keyType: 'EC' },
  [OID.ecdsaWithSha384]: { hash: 'sha384', keyType: 'EC' },
  [OID.ecdsaWithSha512]: { hash: 'sha512', keyType: 'EC' },
};

const WEAK_SIGNATURES: Record<string, string> = {
  [OID.sha1WithRsa]: 'sha1WithRSAEncryption',
  [OID.ecdsaWithSha1]: 'ecdsa-with-SHA1',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
};

export const MAX_CSR_PEM_LENGTH = 16 * 1024;
/** "NEW CERTIFICATE REQUEST" is the label older tools (Netscape, some Windows versions) write. */
const CSR_PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

/**
 * The one parser for every CSR a caller sends (POST /v1/certificates, the factory exchange, renewal, a claim
 * certificate's CSR). Checks it: exactly one PEM block and nothing else, well-formed DER, signature valid (proof of
 * possession), signature algorithm SHA-256+, key within policy, subject free of control characters. Throws typed errors.
 */
export function parseCsr(pem: string): ParsedCsr {
  if (pem.length > MAX_CSR_PEM_LENGTH) throw Errors.invalidCsr(`CSR is longer than ${MAX_CSR_PEM_LENGTH} characters`);
  let der: Buffer;
  try {
    der = decodeSinglePem(pem, CSR_PEM_LABELS);
  } catch (err) {
    if (err instanceof PemError) throw Errors.invalidCsr(`csr ${err.message}`);
    throw err;
  }

  let request: RawCsr;
  try {
    request = readCsr(der);
  } catch {
    throw Errors.invalidCsr('csr is not a valid DER-encoded PKCS#10 request');
  }
  const { signedBytes, publicKeySpki } = request;

  // The key first: an unacceptable key (RSA-1024, Ed25519, secp256k1) is named as such, whatever it signed with.
  const publicKey = checkPublicKey(publicKeySpki);

  const sigOid = request.signatureAlgorithm;
  if (WEAK_SIGNATURES[sigOid]) {
    throw Errors.weakSignatureAlgorithm(`CSR is signed with ${WEAK_SIGNATURES[sigOid]}; use SHA-256 or stronger`);
  }
  const sigAlg = SIGNATURE_HASHES[sigOid];
  if (!sigAlg) throw Errors.weakSignatureAlgorithm(`CSR signature algorithm ${sigOid} is not supported`);
  if (publicKey.type !== sigAlg.keyType) throw Errors.invalidCsr('CSR signature algorithm does not match its key');

  let valid = false;
  try {
    valid = verifySignature(sigAlg.hash, signedBytes, publicKey.keyObject, request.signature);
  } catch {
    valid = false;
  }
  if (!valid) throw Errors.csrSignatureInvalid('CSR signature does not verify with its own public key');

  let subject: ReturnType<typeof readSubject>;
  let sans: { dnsNames: string[]; ipAddresses: string[]; otherNames: number };
  try {
    subject = readSubject(der, request.subject);
  } catch {
    throw Errors.invalidCsr('CSR subject is malformed');
  }
  const { fields, repeated } = subject;
  if (repeated.length) throw Errors.invalidSubject(`CSR subject repeats ${repeated.join(', ')}`);
  // Control characters are refused anywhere; the other rules only for the CN, the one field a profile may use.
  for (const [field, value] of Object.entries(fields) as [keyof SubjectFields, string][]) {
    if (CONTROL_CHARS.test(value)) throw Errors.invalidSubject(`CSR subject ${field} contains control characters`);
  }
  const cnProblem = fields.commonName === undefined ? undefined : subjectFieldProblem('commonName', fields.commonName);
  if (cnProblem) throw Errors.invalidSubject(`CSR subject ${cnProblem}`);
  try {
    sans = requestedSans(der, request.attributes);
  } catch (err) {
    if (err instanceof DomainError) throw err;
    throw Errors.invalidCsr('CSR extensionRequest attribute is malformed');
  }
  return { subject: fields, publicKeySpki, publicKey, ...sans };
}

/** The raw parts of a PKCS #10 request (RFC 2986 §4), located without re-encoding anything. */
interface RawCsr {
  /** CertificationRequestInfo exactly as signed. */
  signedBytes: Buffer;
  subject: Tlv;
  publicKeySpki: Buffer;
  attributes: Tlv | undefined;
  signatureAlgorithm: string;
  signature: Buffer;
}

function readCsr(der: Buffer): RawCsr {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('not a single SEQUENCE');
  const [info, algorithm, signature, ...extra] = children(der, outer);
  if (!signature || extra.length || info.tag !== 0x30 || algorithm.tag !== 0x30 || signature.tag !== 0x03) throw new Error('bad CertificationRequest');
  const [version, subject, spki, attributes, ...more] = children(der, info);
  if (!spki || more.length || version.tag !== 0x02 || subject.tag !== 0x30 || spki.tag !== 0x30) throw new Error('bad CertificationRequestInfo');
  if (!content(der, version).equals(Buffer.from([0]))) throw new Error('unsupported CSR version');
  if (attributes && attributes.tag !== 0xa0) throw new Error('bad attributes');
  const signatureBits = content(der, signature);
  if (signatureBits.length < 2 || signatureBits[0] !== 0) throw new Error('bad signature BIT STRING');
  return {
    signedBytes: Buffer.from(der.subarray(info.start, info.end)),
    subject,
    publicKeySpki: Buffer.from(der.subarray(spki.start, spki.end)),
    attributes,
    signatureAlgorithm: decodeOid(der, children(der, algorithm)[0]),
    signature: Buffer.from(signatureBits.subarray(1)),
  };
}

const FIELD_BY_OID: Record<string, keyof SubjectFields> = {
  [OID.country]: 'country',
  [OID.state]: 'state',
  [OID.locality]: 'locality',
  [OID.organization]: 'organization',
  [OID.organizationalUnit]: 'organizationalUnit',
  [OID.commonName]: 'commonName',
};

/** The known subject fields; unknown attributes are ignored (the profile decides the subject anyway). */
/** The subject fields of a DER Name (e.g. a CA certificate's subject, to give its successor the same one). */
export function subjectFieldsOf(nameDer: Buffer): SubjectFields {
  return readSubject(nameDer, readTlv(nameDer, 0)).fields;
}

function readSubject(der: Buffer, name: Tlv): { fields: SubjectFields; repeated: string[] } {
  const fields: SubjectFields = {};
  const repeated: string[] = [];
  for (const rdn of children(der, name)) {
    if (rdn.tag !== 0x31) throw new Error('RDN is not a SET');
    for (const atv of children(der, rdn)) {
      const [type, value] = atv.tag === 0x30 ? children(der, atv) : [];
      if (!value) throw new Error('bad AttributeTypeAndValue');
      const field = FIELD_BY_OID[decodeOid(der, type)];
      if (!field) continue;
      if (fields[field] !== undefined) repeated.push(field);
      fields[field] = decodeString(der, value);
    }
  }
  return { fields, repeated };
}

/** SANs requested in the extensionRequest attribute. Only profiles that allow SANs ever use them. */
function requestedSans(der: Buffer, attributes: Tlv | undefined): { dnsNames: string[]; ipAddresses: string[]; otherNames: number } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  let otherNames = 0;
  for (const attribute of attributes ? children(der, attributes) : []) {
    const [type, values] = children(der, attribute);
    if (!values || values.tag !== 0x31) throw new Error('bad Attribute');
    if (decodeOid(der, type) !== OID.extensionRequest) continue;
    for (const extensions of children(der, values)) {
      for (const extension of children(der, extensions)) {
        const parts = children(der, extension);
        if (decodeOid(der, parts[0]) !== OID.subjectAltName) continue;
        const value = parts[parts.length - 1];
        if (value.tag !== 0x04) throw new Error('bad extnValue');
        const inner = content(der, value);
        const names = readTlv(inner, 0);
        if (names.tag !== 0x30 || names.end !== inner.length) throw new Error('bad GeneralNames');
        for (const name of children(inner, names)) {
          const bytes = content(inner, name);
          if (name.tag === 0x82) dnsNames.push(bytes.toString('latin1'));
          else if (name.tag === 0x87) ipAddresses.push(ipText(bytes));
          else otherNames++;
        }
      }
    }
  }
  return { dnsNames, ipAddresses, otherNames };
}

/** iPAddress octets as text (IPv6 in RFC 5952 form); other lengths give a marker the profile refuses. */
function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return `invalid-ip-${bytes.toString('hex')}`;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  // The longest run of two or more zero groups becomes "::" (the first, on a tie).
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j > i ? j : i + 1;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}
