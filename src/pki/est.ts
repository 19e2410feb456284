import { generateKeyPair, KeyObject, sign } from 'node:crypto';
import { promisify } from 'node:util';
import { Errors } from '../common/errors';
import { children, decodeOid, decodeSinglePem, decodeString, pemEncode, PemError, readTlv } from './der';
import { bitString, explicit, oid, sequence, set, smallInteger, utf8String } from './der-writer';
import { OID } from './oids';

/**
 * The pure parts of EST (RFC 7030): reading an enrollment body, the device serial a CSR names, the CsrAttrs a label
 * answers, and a key made for /serverkeygen. HTTP framing lives in src/est/. See docs/est.md.
 */

const generateKeyPairAsync = promisify(generateKeyPair);

/** Key types an EST label may ask for (csrattrs) and make (serverkeygen). */
export const EST_KEY_SPECS = ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072'] as const;
export type EstKeySpec = (typeof EST_KEY_SPECS)[number];

/** The subject attribute serialNumber (X.520), where an EST client names its device serial. */
export const SERIAL_NUMBER_OID = '2.5.4.5';

/** An enrollment body is a CSR: at most this many characters of base64 (or PEM), line breaks included. */
export const MAX_EST_BODY_LENGTH = 24 * 1024;

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];

/**
 * The CSR of an EST enrollment body as PEM, for the one CSR parser (pki/csr.ts). RFC 7030 §4.2.1: the body is the
 * base64 of the DER PKCS#10; line breaks and spaces are tolerated, and so is a PEM block (some clients send one).
 */
export function csrPemOfEstBody(body: string): string {
  if (body.length > MAX_EST_BODY_LENGTH) throw Errors.invalidCsr(`the request body is longer than ${MAX_EST_BODY_LENGTH} characters`);
  const text = body.trim();
  if (text.length === 0) throw Errors.invalidCsr('the request body is empty: send the base64 DER of a PKCS#10 request');
  if (text.startsWith('-----BEGIN')) return text;
  const base64 = text.replace(/\s+/g, '');
  if (base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw Errors.invalidCsr('the request body is not base64 (RFC 7030 §4.2.1: base64 of the DER PKCS#10)');
  return pemEncode('CERTIFICATE REQUEST', Buffer.from(base64, 'base64'));
}

/** The subject attributes of a DER Name, in order, as (OID, text); values of types we cannot read are skipped. */
export function nameAttributes(der: Buffer, offset = 0): { type: string; value: string }[] {
  const name = readTlv(der, offset);
  const attributes: { type: string; value: string }[] = [];
  for (const rdn of children(der, name)) {
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, atv);
      if (!value) continue;
      try {
        attributes.push({ type: decodeOid(der, type), value: decodeString(der, value) });
      } catch {
        attributes.push({ type: decodeOid(der, type), value: `#${der.subarray(value.start, value.end).toString('hex')}` });
      }
    }
  }
  return attributes;
}

/** The subject attributes of a CSR (PEM). Assumes a CSR pki/csr.ts parsed already; throws INVALID_CSR otherwise. */
export function csrSubjectAttributes(pem: string): { type: string; value: string }[] {
  try {
    const der = decodeSinglePem(pem, CSR_LABELS);
    const info = readTlv(der, readTlv(der, 0).contentStart);
    const [, subject] = children(der, info);
    return nameAttributes(der, subject.start);
  } catch (err) {
    if (err instanceof PemError) throw Errors.invalidCsr(`csr ${err.message}`);
    throw Errors.invalidCsr('csr is not a valid DER-encoded PKCS#10 request');
  }
}

/** CSR attributes asking /serverkeygen to encrypt the key it returns (RFC 7030 §4.4.1.1, §4.4.1.2). */
export const KEY_ENCRYPTION_ATTRIBUTES: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.9.16.2.37': 'DecryptKeyIdentifier',
  '1.2.840.113549.1.9.16.2.54': 'AsymmetricDecryptKeyIdentifier',
};

/** The attribute types (OIDs) of a CSR's attributes [0] (PEM, already parsed by pki/csr.ts), in order. */
export function csrAttributeTypes(pem: string): string[] {
  try {
    const der = decodeSinglePem(pem, CSR_LABELS);
    const info = readTlv(der, readTlv(der, 0).contentStart);
    const attributes = children(der, info)[3];
    return attributes ? children(der, attributes).map((attribute) => decodeOid(der, children(der, attribute)[0])) : [];
  } catch {
    throw Errors.invalidCsr('csr is not a valid DER-encoded PKCS#10 request');
  }
}

/**
 * The device serial an EST request names (docs/est.md): the subject's serialNumber attribute (2.5.4.5), else its
 * common name. Undefined when it has neither.
 */
export function deviceSerialOf(attributes: readonly { type: string; value: string }[]): string | undefined {
  return attributes.find((a) => a.type === SERIAL_NUMBER_OID)?.value ?? attributes.find((a) => a.type === OID.commonName)?.value;
}

const CURVE_OIDS: Record<string, string> = { EC_P256: '1.2.840.10045.3.1.7', EC_P384: '1.3.132.0.34' };

/**
 * CsrAttrs (RFC 7030 §4.5.2): what a CSR under this label should hold. The key type as an attribute (id-ecPublicKey
 * with the curve, or rsaEncryption with the modulus size, as in RFC 7030 §4.5.2's example and RFC 8951 §3.4), the
 * signature algorithm as a bare OID, and the subject attributes the label reads as bare OIDs. DER.
 */
export function csrAttrs(keySpec: EstKeySpec, subjectAttributeOids: readonly string[]): Buffer {
  const key =
    keySpec in CURVE_OIDS
      ? sequence(oid(OID.ecPublicKey), set(oid(CURVE_OIDS[keySpec])))
      : sequence(oid(OID.rsaEncryption), set(smallInteger(Number(keySpec.slice('RSA_'.length)))));
  const signature = keySpec === 'EC_P384' ? OID.ecdsaWithSha384 : keySpec === 'EC_P256' ? OID.ecdsaWithSha256 : OID.sha256WithRsa;
  return sequence(key, oid(signature), ...subjectAttributeOids.map((type) => oid(type)));
}

/**
 * A key made for /serverkeygen and a CSR signed with it naming `commonName`, so the certificate goes through the
 * same issuance path as any CSR. The private key (PKCS#8 DER) is handed back once and never stored or logged.
 */
export async function generatedKeyAndCsr(keySpec: EstKeySpec, commonName: string): Promise<{ csrPem: string; privateKeyPkcs8: Buffer }> {
  // Off the event loop (libuv's thread pool): RSA-3072 generation takes a second or more, and done synchronously it
  // stalled every other client meanwhile (found by test/e2e/fuzz-properties.e2e.ts, docs/fuzzing.md).
  const pair: { publicKey: KeyObject; privateKey: KeyObject } = keySpec.startsWith('RSA_')
    ? await generateKeyPairAsync('rsa', { modulusLength: Number(keySpec.slice('RSA_'.length)) })
    : await generateKeyPairAsync('ec', { namedCurve: keySpec === 'EC_P384' ? 'P-384' : 'P-256' });
  const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
  const info = sequence(smallInteger(0), sequence(set(sequence(oid(OID.commonName), utf8String(commonName)))), spki, explicit(0, Buffer.alloc(0)));
  const hash = keySpec === 'EC_P384' ? 'sha384' : 'sha256';
  const algorithm = keySpec === 'EC_P384' ? OID.ecdsaWithSha384 : keySpec === 'EC_P256' ? OID.ecdsaWithSha256 : OID.sha256WithRsa;
  // ECDSA: node signs DER (r, s), as PKCS#10 wants; RSA: PKCS#1 v1.5. RSA algorithm identifiers carry NULL parameters.
  const algorithmId = keySpec.startsWith('RSA_') ? sequence(oid(algorithm), Buffer.from([0x05, 0x00])) : sequence(oid(algorithm));
  const csr = sequence(info, algorithmId, bitString(sign(hash, info, pair.privateKey)));
  return { csrPem: pemEncode('CERTIFICATE REQUEST', csr), privateKeyPkcs8: pair.privateKey.export({ format: 'der', type: 'pkcs8' }) };
}

/** Base64 in lines of 64 characters (CRLF), as EST bodies are sent: `openssl base64 -d` reads it as it is. */
export function base64Lines(der: Uint8Array): string {
  return `${(Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? []).join('\r\n')}\r\n`;
}
