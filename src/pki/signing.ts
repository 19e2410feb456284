import { NULL, oid, sequence } from './der-writer';
import { OID } from './oids';

/** Signature algorithms a CA key signs with; names follow AWS KMS SigningAlgorithm values. */
export type SigningAlgorithm = 'ECDSA_SHA_256' | 'ECDSA_SHA_384' | 'RSASSA_PKCS1_V1_5_SHA_256';

/**
 * What the X.509 code needs from a CA key: the algorithm and a signature over bytes. ECDSA signatures are
 * DER (RFC 3279 Ecdsa-Sig-Value), RSA ones PKCS #1 v1.5 — both exactly what goes into an X.509 signature.
 */
export interface SigningKey {
  readonly algorithm: SigningAlgorithm;
  sign(data: Buffer): Promise<Buffer>;
}

/** The signatureAlgorithm field (DER) for each algorithm. RSA carries explicit NULL parameters (RFC 4055 §5); ECDSA none (RFC 5758 §3.2). */
export function signatureAlgorithmIdentifier(algorithm: SigningAlgorithm): Buffer {
  switch (algorithm) {
    case 'ECDSA_SHA_256':
      return sequence(oid(OID.ecdsaWithSha256));
    case 'ECDSA_SHA_384':
      return sequence(oid(OID.ecdsaWithSha384));
    case 'RSASSA_PKCS1_V1_5_SHA_256':
      return sequence(oid(OID.sha256WithRsa), NULL);
  }
}

/** The digest each algorithm signs over (node:crypto name). */
export function digestOf(algorithm: SigningAlgorithm): 'sha256' | 'sha384' {
  return algorithm === 'ECDSA_SHA_384' ? 'sha384' : 'sha256';
}
