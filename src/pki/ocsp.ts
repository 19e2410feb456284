import { createHash } from 'node:crypto';
import { children, content, decodeOid, readTlv, Tlv } from './der';
import { bitString, explicit, NULL, octetString, oid, sequence, tlv } from './der-writer';
import { REASON_CODES, RevocationReason } from './crl';
import { EncodedExtension, extension } from './extensions';
import { signatureAlgorithmIdentifier, SigningKey } from './signing';

/**
 * OCSP (RFC 6960) on the wire: a bounded parser for OCSPRequest and a direct DER encoder for OCSPResponse.
 * Pure: no HTTP, no database, no key material (the caller hands a SigningKey).
 */

export const OCSP_OIDS = {
  /** id-pkix-ocsp-basic: the only response type we produce. */
  basicResponse: '1.3.6.1.5.5.7.48.1.1',
  /** id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 8954). */
  nonce: '1.3.6.1.5.5.7.48.1.2',
  /** id-pkix-ocsp-response: the response types a client accepts (§4.4.3); basic is mandatory, so it is ignored. */
  acceptableResponses: '1.3.6.1.5.5.7.48.1.4',
  /** id-pkix-ocsp-nocheck (§4.2.2.2.1): clients need not check the delegated signer's own revocation. */
  noCheck: '1.3.6.1.5.5.7.48.1.5',
  /** id-pkix-ocsp-pref-sig-algs (§4.4.7): advisory, ignored. */
  preferredSignatureAlgorithms: '1.3.6.1.5.5.7.48.1.8',
  /** id-kp-OCSPSigning: the extended key usage of a delegated responder (§4.2.2.2). */
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** Largest request accepted, in bytes. A CertID is about 75 bytes; this leaves room for 100 of them and a signature. */
export const OCSP_REQUEST_MAX_BYTES = 64 * 1024;
/** Most CertIDs in one request. */
export const OCSP_MAX_REQUESTS = 100;
/** RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)). */
export const OCSP_NONCE_MAX_BYTES = 32;

export type CertIdHash = 'sha1' | 'sha256';

const HASH_BY_OID: Record<string, { name: CertIdHash; length: number }> = {
  [OCSP_OIDS.sha1]: { name: 'sha1', length: 20 },
  [OCSP_OIDS.sha256]: { name: 'sha256', length: 32 },
};

/** A request we cannot read; answered with the malformedRequest status (RFC 6960 §2.3). */
export class OcspRequestError extends Error {
  override readonly name = 'OcspRequestError';
}

export interface OcspCertId {
  /** The CertID exactly as received: a SingleResponse echoes it byte for byte (§4.2.1). */
  der: Buffer;
  /** Null when the hash algorithm is neither SHA-1 nor SHA-256, or a hash has the wrong length: no issuer matches it. */
  hash: CertIdHash | null;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /**
   * Lowercase hex of the serial's magnitude without leading zero bytes (as serials are stored), or null when
   * the INTEGER is negative, zero or longer than 20 octets (RFC 5280 §4.1.2.2): none of ours.
   */
  serial: string | null;
}

export interface OcspRequest {
  certIds: OcspCertId[];
  /**
   * The nonce extension's extnValue contents as received, echoed back verbatim (RFC 8954 §2.1 defines it as
   * the DER of an OCTET STRING; some older clients put the bare octets there). Undefined without a nonce.
   */
  nonce?: Buffer;
}

const MAX_SERIAL_OCTETS = 20;

function fail(reason: string): never {
  throw new OcspRequestError(reason);
}

function expectTag(item: Tlv | undefined, tag: number, what: string): Tlv {
  if (!item || item.tag !== tag) fail(`expected ${what}`);
  return item;
}

/**
 * Parses a DER OCSPRequest (RFC 6960 §4.1.1). Bounded: at most OCSP_REQUEST_MAX_BYTES and OCSP_MAX_REQUESTS
 * CertIDs. The optional signature is not verified (we answer anyone; §4.1.2 leaves it to the responder).
 * Any malformation throws OcspRequestError.
 */
export function parseOcspRequest(input: Uint8Array): OcspRequest {
  if (input.length > OCSP_REQUEST_MAX_BYTES) fail(`request larger than ${OCSP_REQUEST_MAX_BYTES} bytes`);
  if (input.length === 0) fail('empty request');
  const der = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length);
  try {
    return parseRequest(der);
  } catch (err) {
    if (err instanceof OcspRequestError) throw err;
    throw new OcspRequestError(`malformed DER: ${(err as Error).message}`);
  }
}

function parseRequest(der: Buffer): OcspRequest {
  const outer = expectTag(readTlv(der, 0), 0x30, 'OCSPRequest SEQUENCE');
  if (outer.end !== der.length) fail('bytes after the OCSPRequest');
  const [tbsRequest, signature, ...rest] = children(der, outer);
  expectTag(tbsRequest, 0x30, 'TBSRequest SEQUENCE');
  if (signature) expectTag(signature, 0xa0, 'optionalSignature [0]');
  if (rest.length) fail('unexpected elements after optionalSignature');

  const fields = children(der, tbsRequest);
  let i = 0;
  if (fields[i]?.tag === 0xa0) {
    // version [0] EXPLICIT Version DEFAULT v1: only v1 (0) exists.
    const [version, ...extra] = children(der, fields[i]);
    expectTag(version, 0x02, 'version INTEGER');
    const value = content(der, version);
    if (extra.length || value.length !== 1 || value[0] !== 0) fail('unsupported OCSPRequest version');
    i++;
  }
  if (fields[i]?.tag === 0xa1) i++; // requestorName [1]: informational, ignored
  const requestList = expectTag(fields[i++], 0x30, 'requestList SEQUENCE');
  let nonce: Buffer | undefined;
  if (fields[i]?.tag === 0xa2) {
    const [extensions, ...extra] = children(der, fields[i]);
    if (extra.length) fail('requestExtensions holds more than one element');
    for (const ext of parseExtensions(der, expectTag(extensions, 0x30, 'requestExtensions SEQUENCE'))) {
      if (ext.id === OCSP_OIDS.nonce) nonce = checkNonce(ext.value);
      else if (ext.critical && ext.id !== OCSP_OIDS.acceptableResponses && ext.id !== OCSP_OIDS.preferredSignatureAlgorithms) {
        fail(`unsupported critical request extension ${ext.id}`);
      }
    }
    i++;
  }
  if (i !== fields.length) fail('unexpected element in TBSRequest');

  const requests = children(der, requestList);
  if (requests.length === 0) fail('requestList is empty');
  if (requests.length > OCSP_MAX_REQUESTS) fail(`more than ${OCSP_MAX_REQUESTS} requests`);
  const certIds = requests.map((request) => {
    const [reqCert, singleExtensions, ...extra] = children(der, expectTag(request, 0x30, 'Request SEQUENCE'));
    if (extra.length) fail('unexpected element in Request');
    if (singleExtensions) {
      const [extensions, ...more] = children(der, expectTag(singleExtensions, 0xa0, 'singleRequestExtensions [0]'));
      if (more.length) fail('singleRequestExtensions holds more than one element');
      for (const ext of parseExtensions(der, expectTag(extensions, 0x30, 'singleRequestExtensions SEQUENCE'))) {
        if (ext.critical) fail(`unsupported critical single request extension ${ext.id}`);
      }
    }
    return parseCertId(der, expectTag(reqCert, 0x30, 'CertID SEQUENCE'));
  });
  return { certIds, ...(nonce ? { nonce } : {}) };
}

function parseCertId(der: Buffer, certId: Tlv): OcspCertId {
  const [algorithm, nameHash, keyHash, serialNumber, ...extra] = children(der, certId);
  if (extra.length) fail('unexpected element in CertID');
  const [algorithmOid, parameters, ...more] = children(der, expectTag(algorithm, 0x30, 'hashAlgorithm SEQUENCE'));
  // Parameters are absent or NULL for the SHA family (RFC 5754 §2: both must be accepted).
  if (more.length || (parameters && (parameters.tag !== 0x05 || parameters.end !== parameters.contentStart))) fail('bad hashAlgorithm parameters');
  const hashOid = decodeOid(der, expectTag(algorithmOid, 0x06, 'hashAlgorithm OID'));
  const issuerNameHash = content(der, expectTag(nameHash, 0x04, 'issuerNameHash OCTET STRING'));
  const issuerKeyHash = content(der, expectTag(keyHash, 0x04, 'issuerKeyHash OCTET STRING'));
  const serial = content(der, expectTag(serialNumber, 0x02, 'serialNumber INTEGER'));
  if (serial.length === 0) fail('empty serialNumber');
  const known = HASH_BY_OID[hashOid];
  const hash = known && issuerNameHash.length === known.length && issuerKeyHash.length === known.length ? known.name : null;
  return {
    der: Buffer.from(der.subarray(certId.start, certId.end)),
    hash,
    issuerNameHash: Buffer.from(issuerNameHash),
    issuerKeyHash: Buffer.from(issuerKeyHash),
    serial: serialHex(serial),
  };
}

function serialHex(integer: Buffer): string | null {
  if (integer[0] & 0x80) return null; // negative
  let start = 0;
  while (start < integer.length && integer[start] === 0) start++;
  const magnitude = integer.subarray(start);
  return magnitude.length === 0 || magnitude.length > MAX_SERIAL_OCTETS ? null : magnitude.toString('hex');
}

interface ParsedExtension {
  id: string;
  critical: boolean;
  value: Buffer;
}

/** Extensions ::= SEQUENCE OF Extension; an extension may appear once (RFC 5280 §4.2). */
function parseExtensions(der: Buffer, list: Tlv): ParsedExtension[] {
  const seen = new Set<string>();
  return children(der, list).map((item) => {
    const parts = children(der, expectTag(item, 0x30, 'Extension SEQUENCE'));
    const id = decodeOid(der, expectTag(parts[0], 0x06, 'extnID'));
    let critical = false;
    let next = 1;
    if (parts[next]?.tag === 0x01) {
      const flag = content(der, parts[next]);
      if (flag.length !== 1) fail('bad critical BOOLEAN');
      critical = flag[0] !== 0;
      next++;
    }
    const value = content(der, expectTag(parts[next], 0x04, 'extnValue OCTET STRING'));
    if (parts.length !== next + 1) fail('unexpected element in Extension');
    if (seen.has(id)) fail(`extension ${id} appears twice`);
    seen.add(id);
    return { id, critical, value: Buffer.from(value) };
  });
}

/** RFC 8954 §2.1: 1 to 32 octets, whether wrapped in an OCTET STRING (as specified) or bare (older clients). */
function checkNonce(value: Buffer): Buffer {
  let octets = value.length;
  if (value[0] === 0x04) {
    try {
      const inner = readTlv(value, 0);
      if (inner.end === value.length) octets = inner.end - inner.contentStart;
    } catch {
      // not an OCTET STRING after all: bare octets
    }
  }
  if (octets < 1 || octets > OCSP_NONCE_MAX_BYTES) fail(`nonce of ${octets} octets (RFC 8954 allows 1 to ${OCSP_NONCE_MAX_BYTES})`);
  return value;
}

/** The bytes an issuer is hashed over in a CertID (§4.1.1): its subject Name DER and its public key BIT STRING value. */
export function certIdHashes(issuerName: Buffer, issuerSpki: Buffer, hash: CertIdHash): { nameHash: Buffer; keyHash: Buffer } {
  return {
    nameHash: createHash(hash).update(issuerName).digest(),
    keyHash: createHash(hash).update(subjectPublicKeyBits(issuerSpki)).digest(),
  };
}

/** The subjectPublicKey BIT STRING value of an SPKI, without its unused-bits octet. */
export function subjectPublicKeyBits(spki: Buffer): Buffer {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.contentStart);
  const key = readTlv(spki, algorithm.end);
  if (key.tag !== 0x03) throw new Error('SubjectPublicKeyInfo without a BIT STRING key');
  return spki.subarray(key.contentStart + 1, key.end);
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

/** OCSPResponseStatus values other than successful (§4.2.1); sigRequired (5) is never sent: we sign for anyone. */
export const OCSP_RESPONSE_STATUS = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, unauthorized: 6 } as const;
export type OcspErrorStatus = Exclude<keyof typeof OCSP_RESPONSE_STATUS, 'successful'>;

const STATUS_RESPONSES = new Map<OcspErrorStatus, Buffer>(
  (['malformedRequest', 'internalError', 'tryLater', 'unauthorized'] as const).map((status) => [
    status,
    sequence(tlv(0x0a, Buffer.from([OCSP_RESPONSE_STATUS[status]]))),
  ]),
);

/** An OCSPResponse carrying only an error status (no responseBytes, unsigned, as §4.2.1 specifies). */
export function ocspStatusResponse(status: OcspErrorStatus): Buffer {
  return STATUS_RESPONSES.get(status)!;
}

export type OcspCertStatus =
  | { status: 'good' }
  | { status: 'revoked'; revokedAt: Date; reason: RevocationReason | null }
  | { status: 'unknown' };

export interface OcspSingleResponse {
  /** The request's CertID DER, echoed as received. */
  certId: Buffer;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface BasicOcspResponseTemplate {
  /** SHA-1 of the responder's public key BIT STRING value: responderID byKey (§4.2.2.3). */
  responderKeyHash: Buffer;
  producedAt: Date;
  responses: OcspSingleResponse[];
  /** The request's nonce extnValue contents, echoed verbatim. */
  nonce?: Buffer;
  /** Certificates that help the client verify the signature: the delegated responder's. */
  certs: Buffer[];
}

/** GeneralizedTime YYYYMMDDHHMMSSZ, whole seconds: OCSP times are always GeneralizedTime (§4.2.1). */
export function generalizedTime(date: Date): Buffer {
  const iso = new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();
  return tlv(0x18, Buffer.from(iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z', 'latin1'));
}

const GOOD = Buffer.from([0x80, 0x00]); // good [0] IMPLICIT NULL
const UNKNOWN = Buffer.from([0x82, 0x00]); // unknown [2] IMPLICIT NULL

function certStatus(status: OcspCertStatus): Buffer {
  switch (status.status) {
    case 'good':
      return GOOD;
    case 'unknown':
      return UNKNOWN;
    case 'revoked': {
      // revoked [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL };
      // unspecified is left out, as in our CRLs (RFC 5280 §5.3.1: SHOULD be absent).
      const reason = status.reason && status.reason !== 'unspecified' ? [explicit(0, tlv(0x0a, Buffer.from([REASON_CODES[status.reason]])))] : [];
      return tlv(0xa1, Buffer.concat([generalizedTime(status.revokedAt), ...reason]));
    }
  }
}

/** The response extension echoing a nonce (extnValue copied as the client sent it). */
function nonceExtension(nonce: Buffer): EncodedExtension {
  return extension(OCSP_OIDS.nonce, false, nonce);
}

/**
 * Encodes and signs a successful OCSPResponse with a BasicOCSPResponse (§4.2.1): responderID byKey, one
 * SingleResponse per CertID, the nonce when asked, and `certs` so the client can verify a delegated signer.
 * Linear in the number of responses; one signature.
 */
export async function signOcspResponse(template: BasicOcspResponseTemplate, signer: SigningKey): Promise<Buffer> {
  const signatureAlgorithm = signatureAlgorithmIdentifier(signer.algorithm);
  const single = template.responses.map((response) =>
    sequence(response.certId, certStatus(response.status), generalizedTime(response.thisUpdate), explicit(0, generalizedTime(response.nextUpdate))),
  );
  const tbsResponseData = sequence(
    // version v1 is the DEFAULT and so absent; responderID byKey [2] EXPLICIT KeyHash.
    explicit(2, octetString(template.responderKeyHash)),
    generalizedTime(template.producedAt),
    sequence(...single),
    ...(template.nonce ? [explicit(1, sequence(nonceExtension(template.nonce).der))] : []),
  );
  const signature = await signer.sign(tbsResponseData);
  const basic = sequence(
    tbsResponseData,
    signatureAlgorithm,
    bitString(signature),
    ...(template.certs.length ? [explicit(0, sequence(...template.certs))] : []),
  );
  return sequence(tlv(0x0a, Buffer.from([OCSP_RESPONSE_STATUS.successful])), explicit(0, sequence(oid(OCSP_OIDS.basicResponse), octetString(basic))));
}

/** id-pkix-ocsp-nocheck (§4.2.2.2.1): extnValue NULL; non-critical. */
export function ocspNoCheck(): EncodedExtension {
  return extension(OCSP_OIDS.noCheck, false, NULL);
}
