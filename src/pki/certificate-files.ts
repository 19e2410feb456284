import { pemEncode } from './der';
import { certsOnlyPkcs7 } from './pkcs7';

/**
 * The one place that turns "a certificate and its chain" into the bytes of a download (docs/downloads.md):
 * - `pem`: the certificate, then each chain certificate up to the root, as PEM blocks;
 * - `der`: the certificate alone (DER has room for one certificate);
 * - `p7b`: a certs-only PKCS #7 (CMS SignedData without signers), DER, with the certificate first and the chain after.
 */
export const CERTIFICATE_FILE_FORMATS = ['pem', 'der', 'p7b'] as const;
export type CertificateFileFormat = (typeof CERTIFICATE_FILE_FORMATS)[number];

/**
 * Media types: RFC 2585 for DER; RFC 8551 §3.2.2 for the certs-only PKCS #7 (sent as binary DER, not base64 as
 * S/MIME and EST's cacerts send it); the de-facto types for PEM and PKCS #12 (neither has a registered one).
 */
export const MEDIA_TYPES = {
  pem: 'application/x-pem-file',
  der: 'application/pkix-cert',
  p7b: 'application/pkcs7-mime',
  p12: 'application/x-pkcs12',
} as const;

export interface CertificateFile {
  bytes: Buffer;
  /** The Content-Type to send (MEDIA_TYPES, with the certs-only parameter for p7b). */
  contentType: string;
  /** File name extension, without the dot. */
  extension: string;
}

/** The certificate and its chain (the issuer first, up to and including the root) as a file of the format. */
export function certificateFile(format: CertificateFileFormat, certificateDer: Buffer, chainDer: readonly Buffer[]): CertificateFile {
  switch (format) {
    case 'pem':
      return { bytes: Buffer.from([certificateDer, ...chainDer].map((der) => pemEncode('CERTIFICATE', der)).join(''), 'ascii'), contentType: MEDIA_TYPES.pem, extension: 'pem' };
    case 'der':
      return { bytes: certificateDer, contentType: MEDIA_TYPES.der, extension: 'der' };
    case 'p7b':
      return { bytes: certsOnlyPkcs7([certificateDer, ...chainDer]), contentType: `${MEDIA_TYPES.p7b}; smime-type=certs-only`, extension: 'p7b' };
  }
}
