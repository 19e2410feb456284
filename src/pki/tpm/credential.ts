import { createCipheriv, createDecipheriv, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, KeyObject, constants, privateDecrypt, publicEncrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { Errors } from '../../common/errors';
import { TPM_ALG, TPM_HASHES, TPM2_TOOLS_CREDENTIAL_MAGIC, TPM2_TOOLS_CREDENTIAL_VERSION } from './constants';
import { kdfa, kdfe } from './kdf';
import { tpm2b, u32 } from './marshal';
import { TpmPublic } from './public';

/** What MakeCredential needs of the EK: its public key (from the EK certificate), name algorithm and storage cipher. */
export interface EkParameters {
  publicKey: KeyObject;
  nameAlg: number;
  /** AES key size of the EK's symmetric definition (CFB mode). */
  aesBits: number;
}

/**
 * The EK's MakeCredential parameters. With the EK's public area (sent by the device), its nameAlg and symmetric
 * definition, once its key is checked to be the certificate's; without, those of the TCG EK templates for that key
 * type (RSA and ECC P-256: SHA-256 and AES-128-CFB; ECC P-384: SHA-384 and AES-256-CFB). A device lying about these
 * only makes its own activation fail: the secret stays sealed to the certified EK key.
 */
export function ekParameters(certificateKey: KeyObject, ekPublic?: TpmPublic): EkParameters {
  const spki = certificateKey.export({ type: 'spki', format: 'der' });
  if (ekPublic) {
    if (!ekPublic.spki.equals(spki)) throw Errors.tpmEkUntrusted('the EK public area is not the key of the EK certificate');
    if (ekPublic.symmetric.algorithm !== TPM_ALG.AES || ekPublic.symmetric.mode !== TPM_ALG.CFB) {
      throw Errors.tpmAlgorithmUnsupported('the EK is not a storage key with AES-CFB');
    }
    return { publicKey: certificateKey, nameAlg: ekPublic.nameAlg, aesBits: ekPublic.symmetric.keyBits };
  }
  const type = certificateKey.asymmetricKeyType;
  if (type === 'rsa') return { publicKey: certificateKey, nameAlg: TPM_ALG.SHA256, aesBits: 128 };
  if (type === 'ec') {
    const curve = certificateKey.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { publicKey: certificateKey, nameAlg: TPM_ALG.SHA256, aesBits: 128 };
    if (curve === 'secp384r1') return { publicKey: certificateKey, nameAlg: TPM_ALG.SHA384, aesBits: 256 };
  }
  throw Errors.tpmAlgorithmUnsupported('the EK certificate key is not RSA, ECC P-256 or ECC P-384');
}

export interface Credential {
  /** TPM2B_ID_OBJECT: integrity HMAC and the encrypted secret, bound to the object's name. */
  idObject: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: the seed, encrypted to the EK (RSA-OAEP) or an ECDH point (ECC). */
  encryptedSecret: Buffer;
}

/** The seed and its encryption to the EK (Part 1, 24: "IDENTITY" is the label of a credential's seed). */
function seedFor(ek: EkParameters): { seed: Buffer; encrypted: Buffer } {
  const hash = TPM_HASHES[ek.nameAlg];
  if (ek.publicKey.asymmetricKeyType === 'rsa') {
    const seed = randomBytes(hash.size);
    const encrypted = publicEncrypt({ key: ek.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: Buffer.from('IDENTITY\0', 'ascii') }, seed);
    return { seed, encrypted };
  }
  // ECC: one-pass Diffie-Hellman with an ephemeral key (Part 1, C.6.1); Z is the shared x-coordinate.
  const jwk = ek.publicKey.export({ format: 'jwk' });
  const ephemeral = generateKeyPairSync('ec', { namedCurve: jwk.crv as string });
  const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: ek.publicKey });
  const eph = ephemeral.publicKey.export({ format: 'jwk' });
  const ephX = Buffer.from(eph.x as string, 'base64url');
  const ephY = Buffer.from(eph.y as string, 'base64url');
  const ekX = Buffer.from(jwk.x as string, 'base64url');
  const seed = kdfe(ek.nameAlg, z, 'IDENTITY', ephX, ekX, hash.size * 8);
  return { seed, encrypted: Buffer.concat([tpm2b(ephX), tpm2b(ephY)]) };
}

/**
 * TPM2_MakeCredential computed without a TPM (Part 1, 24; Part 3, 12.6): only the TPM holding the EK's private key
 * can recover `secret`, and it releases it only to an object with `objectName` loaded beside that EK
 * (TPM2_ActivateCredential). The name is the AK's, so activation proves the AK lives in the TPM of the EK.
 */
export function makeCredential(ek: EkParameters, objectName: Buffer, secret: Buffer): Credential {
  const hash = TPM_HASHES[ek.nameAlg];
  if (!hash) throw Errors.tpmAlgorithmUnsupported('EK name algorithm is not supported');
  if (secret.length < 1 || secret.length > hash.size) throw new RangeError('the credential secret must be 1 to digest-size bytes');
  const { seed, encrypted } = seedFor(ek);
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', objectName, Buffer.alloc(0), ek.aesBits);
  const cipher = createCipheriv(`aes-${ek.aesBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(secret)), cipher.final()]);
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const outerHmac = createHmac(hash.name, hmacKey).update(Buffer.concat([encIdentity, objectName])).digest();
  return { idObject: tpm2b(Buffer.concat([tpm2b(outerHmac), encIdentity])), encryptedSecret: tpm2b(encrypted) };
}

/** The credential as the file tpm2_makecredential writes (`-o`) and tpm2_activatecredential reads (`-i`). */
export function tpm2ToolsCredentialFile(credential: Credential): Buffer {
  return Buffer.concat([u32(TPM2_TOOLS_CREDENTIAL_MAGIC), u32(TPM2_TOOLS_CREDENTIAL_VERSION), credential.idObject, credential.encryptedSecret]);
}

/** Reads such a file back (tests compare it with what tpm2_makecredential writes). */
export function readTpm2ToolsCredentialFile(file: Buffer): Credential {
  if (file.length < 12 || file.readUInt32BE(0) !== TPM2_TOOLS_CREDENTIAL_MAGIC) throw new RangeError('not a tpm2-tools credential file');
  const idSize = file.readUInt16BE(8);
  const idObject = file.subarray(8, 10 + idSize);
  const encryptedSecret = file.subarray(10 + idSize);
  return { idObject: Buffer.from(idObject), encryptedSecret: Buffer.from(encryptedSecret) };
}


/**
 * TPM2_ActivateCredential in software, for a key whose private part we hold (tests, and checking this module
 * against tpm2_makecredential's output): recovers the secret, or throws when the HMAC does not match the name.
 */
export function activateCredentialInSoftware(ek: EkParameters, ekPrivateKey: KeyObject, objectName: Buffer, credential: Credential): Buffer {
  const hash = TPM_HASHES[ek.nameAlg];
  const encrypted = credential.encryptedSecret.subarray(2);
  let seed: Buffer;
  if (ekPrivateKey.asymmetricKeyType === 'rsa') {
    seed = privateDecrypt({ key: ekPrivateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: Buffer.from('IDENTITY\0', 'ascii') }, encrypted);
  } else {
    const xLen = encrypted.readUInt16BE(0);
    const ephX = encrypted.subarray(2, 2 + xLen);
    const ephY = encrypted.subarray(4 + xLen);
    const crv = ek.publicKey.export({ format: 'jwk' }).crv as string;
    const ephemeral = createPublicKey({ key: { kty: 'EC', crv, x: ephX.toString('base64url'), y: ephY.toString('base64url') }, format: 'jwk' });
    const z = diffieHellman({ privateKey: ekPrivateKey, publicKey: ephemeral });
    const ekX = Buffer.from(ek.publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    seed = kdfe(ek.nameAlg, z, 'IDENTITY', ephX, ekX, hash.size * 8);
  }
  const id = credential.idObject.subarray(2);
  const hmacLen = id.readUInt16BE(0);
  const outerHmac = id.subarray(2, 2 + hmacLen);
  const encIdentity = id.subarray(2 + hmacLen);
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const expected = createHmac(hash.name, hmacKey).update(Buffer.concat([encIdentity, objectName])).digest();
  if (outerHmac.length !== expected.length || !timingSafeEqual(expected, outerHmac)) throw new Error('integrity check failed');
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', objectName, Buffer.alloc(0), ek.aesBits);
  const decipher = createDecipheriv(`aes-${ek.aesBits}-cfb`, symKey, Buffer.alloc(16));
  const plain = Buffer.concat([decipher.update(encIdentity), decipher.final()]);
  return plain.subarray(2, 2 + plain.readUInt16BE(0));
}
