import { decodeSinglePem, PemError } from '../../src/pki/der';

/**
 * The DER inside a PEM the service made, or undefined when it is not one block with one of `labels`. For tests and the
 * benchmark; the service reads PEM with decodeSinglePem (src/pki/der.ts), which says what is wrong.
 */
export function pemDecode(pem: string, labels: readonly string[]): Buffer | undefined {
  try {
    return decodeSinglePem(pem, labels);
  } catch (err) {
    if (err instanceof PemError) return undefined;
    throw err;
  }
}
