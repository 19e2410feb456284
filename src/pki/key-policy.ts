import { createPublicKey, KeyObject } from 'node:crypto';
import { Errors } from '../common/errors';

/** A public key we accept for a certificate, described well enough for policy and display. */
export interface PublicKeyInfo {
  keyObject: KeyObject;
  type: 'RSA' | 'EC';
  /** "RSA-2048", "EC-P256", ... */
  description: string;
  bits: number;
}

const CURVES: Record<string, { name: string; bits: number }> = {
  prime256v1: { name: 'P256', bits: 256 },
  secp384r1: { name: 'P384', bits: 384 },
  secp521r1: { name: 'P521', bits: 521 },
};

/**
 * The key policy for anything we certify (DESIGN: RSA >= 2048, EC P-256/P-384/P-521). AWS IoT accepts the
 * same set, so a key refused here would be refused there too. Everything else is a 422 naming the key.
 */
export function checkPublicKey(spki: Buffer): PublicKeyInfo {
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw Errors.unsupportedKey('the public key could not be parsed or uses an unsupported algorithm');
  }
  const details = keyObject.asymmetricKeyDetails ?? {};
  if (keyObject.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < 2048) throw Errors.unsupportedKey(`RSA keys must be at least 2048 bits, got ${bits}`);
    if (bits > 8192) throw Errors.unsupportedKey(`RSA keys larger than 8192 bits are not accepted, got ${bits}`);
    if (details.publicExponent !== undefined && details.publicExponent < 65537n) {
      throw Errors.unsupportedKey('RSA public exponent must be at least 65537');
    }
    return { keyObject, type: 'RSA', description: `RSA-${bits}`, bits };
  }
  if (keyObject.asymmetricKeyType === 'ec') {
    const curve = CURVES[details.namedCurve ?? ''];
    if (!curve) {
      throw Errors.unsupportedKey(`EC curve ${details.namedCurve ?? 'unknown'} is not allowed; use P-256, P-384 or P-521`);
    }
    return { keyObject, type: 'EC', description: `EC-${curve.name}`, bits: curve.bits };
  }
  throw Errors.unsupportedKey(`${keyObject.asymmetricKeyType ?? 'unknown'} keys are not accepted; use RSA or EC`);
}
