import { constants, createHash, createPublicKey, privateEncrypt, publicDecrypt, verify } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import { AwsError } from '../http/aws-error';
import { KmsKeys, SIGNING_ALGORITHMS, StandInKey } from './kms-keys';

const HASH_OF: Record<string, { name: string; length: number }> = {
  ECDSA_SHA_256: { name: 'sha256', length: 32 },
  ECDSA_SHA_384: { name: 'sha384', length: 48 },
  RSASSA_PKCS1_V1_5_SHA_256: { name: 'sha256', length: 32 },
  RSASSA_PKCS1_V1_5_SHA_384: { name: 'sha384', length: 48 },
  RSASSA_PKCS1_V1_5_SHA_512: { name: 'sha512', length: 64 },
};

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1) for PKCS #1 v1.5 signatures over a digest. */
const DIGEST_INFO: Record<string, string> = {
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

/** Sign and Verify as KMS does them: key usage, algorithm against key spec, message or digest length checked. */
export class KmsSignatures {
  constructor(private readonly keys: KmsKeys) {}

  sign(body: Record<string, unknown>): unknown {
    const key = this.keys.resolve(body.KeyId, { allowDisabled: false });
    const { algorithm, digest, hash } = signingInput(key, body);
    let signature: Buffer;
    if (key.spec.startsWith('ECC')) {
      const secret = Buffer.from(key.privateKey!.export({ format: 'jwk' }).d!, 'base64url');
      const curve = key.spec === 'ECC_NIST_P256' ? p256 : p384;
      // KMS returns ECDSA signatures DER-encoded (RFC 3279), as X.509 wants them.
      signature = Buffer.from(curve.sign(digest, secret, { prehash: false, format: 'der' }));
    } else {
      signature = privateEncrypt({ key: key.privateKey!, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), digest]));
    }
    return { KeyId: key.arn, Signature: signature.toString('base64'), SigningAlgorithm: algorithm };
  }

  verify(body: Record<string, unknown>): unknown {
    const key = this.keys.resolve(body.KeyId, { allowDisabled: false });
    const { algorithm, digest, hash } = signingInput(key, body);
    const signature = Buffer.from(String(body.Signature ?? ''), 'base64');
    let valid: boolean;
    if (key.spec.startsWith('ECC')) {
      const curve = key.spec === 'ECC_NIST_P256' ? p256 : p384;
      const point = createPublicKey(key.publicKey!).export({ format: 'jwk' });
      const publicKey = Buffer.concat([Buffer.from([4]), Buffer.from(point.x!, 'base64url'), Buffer.from(point.y!, 'base64url')]);
      valid = curve.verify(signature, digest, publicKey, { prehash: false, format: 'der' });
    } else {
      const message = body.MessageType === 'DIGEST' ? undefined : Buffer.from(String(body.Message), 'base64');
      valid = message ? verify(hash, message, key.publicKey!, signature) : false;
      if (!message) {
        // Verify over a digest: recover the DigestInfo and compare.
        try {
          const info = publicDecrypt({ key: key.publicKey!, padding: constants.RSA_PKCS1_PADDING }, signature);
          valid = info.equals(Buffer.concat([Buffer.from(DIGEST_INFO[hash], 'hex'), digest]));
        } catch {
          valid = false;
        }
      }
    }
    if (!valid) throw new AwsError('KMSInvalidSignatureException', 'The signature is not valid.');
    return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: algorithm };
  }
}

/** The algorithm, the digest to sign (the message hashed, or the digest given) and the hash's name. */
function signingInput(key: StandInKey, body: Record<string, unknown>): { algorithm: string; digest: Buffer; hash: string } {
  if (key.usage !== 'SIGN_VERIFY' || !key.privateKey) {
    throw new AwsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.usage} which is not valid for Sign.`);
  }
  const algorithm = String(body.SigningAlgorithm ?? '');
  if (!SIGNING_ALGORITHMS[key.spec].includes(algorithm)) {
    throw new AwsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${key.spec}.`);
  }
  const hash = HASH_OF[algorithm];
  if (!hash) throw new AwsError('ValidationException', `the stand-in does not implement ${algorithm}`);
  const message = Buffer.from(String(body.Message ?? ''), 'base64');
  if (message.length === 0 || message.length > 4096) {
    throw new AwsError('ValidationException', "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and 4096");
  }
  const messageType = body.MessageType ?? 'RAW';
  if (messageType === 'DIGEST') {
    if (message.length !== hash.length) {
      throw new AwsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
    }
    return { algorithm, digest: message, hash: hash.name };
  }
  if (messageType !== 'RAW') throw new AwsError('ValidationException', `invalid MessageType ${String(messageType)}`);
  return { algorithm, digest: createHash(hash.name).update(message).digest(), hash: hash.name };
}
