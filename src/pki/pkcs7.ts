import * as pkijs from 'pkijs';

/** id-data: the (absent) content type of a certs-only SignedData (RFC 8551 §3.2.2, RFC 7030 §4.1.3). */
const ID_DATA = '1.2.840.113549.1.7.1';

/**
 * A "certs-only" CMS SignedData (the degenerate PKCS#7 that `openssl pkcs7 -print_certs` reads, and EST's
 * `application/pkcs7-mime; smime-type=certs-only`): no content, no signers, just the certificates in the order
 * given. DER encoded. Built with pkijs, the well-kept CMS library; no hot path goes through here.
 */
export function certsOnlyPkcs7(certificatesDer: readonly Uint8Array[]): Buffer {
  if (certificatesDer.length === 0) throw new Error('a certs-only PKCS#7 needs at least one certificate');
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: ID_DATA }),
    certificates: certificatesDer.map((der) => pkijs.Certificate.fromBER(der)),
    digestAlgorithms: [],
    signerInfos: [],
  });
  const contentInfo = new pkijs.ContentInfo({ contentType: pkijs.ContentInfo.SIGNED_DATA, content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false));
}

/** The certificates (DER) of a certs-only PKCS#7, in their order; throws on anything else. */
export function certificatesOfPkcs7(der: Uint8Array): Buffer[] {
  const contentInfo = pkijs.ContentInfo.fromBER(der);
  if (contentInfo.contentType !== pkijs.ContentInfo.SIGNED_DATA) throw new Error('not a PKCS#7 SignedData');
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });
  return (signedData.certificates ?? []).map((certificate) => {
    if (!(certificate instanceof pkijs.Certificate)) throw new Error('the PKCS#7 holds something other than an X.509 certificate');
    return Buffer.from(certificate.toSchema().toBER(false));
  });
}
