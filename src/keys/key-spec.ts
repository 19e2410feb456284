import { SigningAlgorithm } from '../pki/signing';

export const KEY_SPECS = ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072', 'RSA_4096'] as const;
export type KeySpec = (typeof KEY_SPECS)[number];

export const KEY_BACKENDS = ['local', 'aws-kms', 'pkcs11'] as const;
export type KeyBackend = (typeof KEY_BACKENDS)[number];

/** The signature algorithm a CA with this key uses: the hash matches the curve; RSA signs SHA-256 PKCS #1 v1.5. */
export function signingAlgorithmFor(spec: KeySpec): SigningAlgorithm {
  switch (spec) {
    case 'EC_P256':
      return 'ECDSA_SHA_256';
    case 'EC_P384':
      return 'ECDSA_SHA_384';
    default:
      return 'RSASSA_PKCS1_V1_5_SHA_256';
  }
}
