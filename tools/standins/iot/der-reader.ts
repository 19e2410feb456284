import { X509Certificate } from 'node:crypto';

/*
 * The IoT stand-in's own DER reader. The stand-in reads the certificates the service sends it with this file and
 * node's X509Certificate only, never with the service's DER code (src/pki), on purpose: a stand-in that parsed our
 * certificates with our own decoder would accept whatever our encoder gets wrong. Read independently, as AWS IoT
 * reads them, they get a second opinion on our encoder. Keep it independent. (foreign-certificate.ts does use src/pki,
 * to make a forged certificate: that is making one, not checking one.)
 */

/** One DER element: its tag, and where it starts, where its contents start and where it ends. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** The DER element at `offset`; throws on a truncated one. */
export function tlv(der: Buffer, offset: number): Tlv {
  const tag = der[offset];
  let length = der[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i];
    contentStart += count;
  }
  if (tag === undefined || contentStart + length > der.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end: contentStart + length };
}

/** Hex DER of the OID in Certificate.signatureAlgorithm (the element after tbsCertificate); undefined when unreadable. */
export function signatureAlgorithmOid(der: Buffer): string | undefined {
  try {
    const outer = tlv(der, 0);
    const tbs = tlv(der, outer.contentStart);
    const algorithm = tlv(der, tbs.end);
    const oid = tlv(der, algorithm.contentStart);
    return oid.tag === 0x06 ? der.subarray(oid.start, oid.end).toString('hex') : undefined;
  } catch {
    return undefined;
  }
}

/** DER of a certificate's subject Name (TBSCertificate: [0] version, serial, signature, issuer, validity, subject). */
export function subjectDer(x509: X509Certificate): Buffer {
  const der = x509.raw;
  const tbs = tlv(der, tlv(der, 0).contentStart);
  let offset = tbs.contentStart;
  const first = tlv(der, offset);
  if (first.tag === 0xa0) offset = first.end;
  for (let skip = 0; skip < 4; skip++) offset = tlv(der, offset).end; // serial, signature, issuer, validity
  const subject = tlv(der, offset);
  return der.subarray(subject.start, subject.end);
}
