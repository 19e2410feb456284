import { readTlv } from '../../src/pki/der';
import { explicit, NULL, octetString, oid, sequence, unsignedInteger } from '../../src/pki/der-writer';
import { extension } from '../../src/pki/extensions';
import { CertIdHash, certIdHashes, OCSP_OIDS } from '../../src/pki/ocsp';

/**
 * The client side of OCSP (RFC 6960) for the tests and the benchmark: the service only parses requests and writes
 * responses (src/pki/ocsp.ts).
 */

/** A DER OCSPRequest: one CertID per certificate (SHA-1 or SHA-256 hashes of the issuer), and a nonce when given. */
export function encodeOcspRequest(
  certIds: { hash: CertIdHash; issuerName: Buffer; issuerSpki: Buffer; serial: Buffer }[],
  nonce?: Buffer,
): Buffer {
  const requests = certIds.map(({ hash, issuerName, issuerSpki, serial }) => {
    const { nameHash, keyHash } = certIdHashes(issuerName, issuerSpki, hash);
    return sequence(sequence(sequence(oid(OCSP_OIDS[hash]), NULL), octetString(nameHash), octetString(keyHash), unsignedInteger(serial)));
  });
  const extensions = nonce ? [explicit(2, sequence(extension(OCSP_OIDS.nonce, false, octetString(nonce)).der))] : [];
  return sequence(sequence(sequence(...requests), ...extensions));
}

/** The responseStatus of an encoded OCSPResponse, read from its first bytes. */
export function ocspResponseStatus(der: Buffer): number {
  const outer = readTlv(der, 0);
  const status = readTlv(der, outer.contentStart);
  if (status.tag !== 0x0a || status.end - status.contentStart !== 1) throw new Error('not an OCSPResponse');
  return der[status.contentStart];
}
