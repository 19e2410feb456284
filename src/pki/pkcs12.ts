import { createHash, createHmac, createPrivateKey, createPublicKey, hash, X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import { CONTROL_CHARS } from '../common/text';
import { TimeSlicer } from '../common/yield';
import { oid, octetString, sequence, set, tlv } from './der-writer';

/**
 * PKCS #12 (RFC 7292) files for keys the service generated, built with pkijs. Modern algorithms only, so that
 * OpenSSL 3 opens them without `-legacy` and nothing in them relies on RC2, 3DES or SHA-1:
 * - the key: a PKCS8ShroudedKeyBag, PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC);
 * - the certificate and its chain: CertBags in a SafeContents encrypted the same way (PBES2, AES-256-CBC);
 * - integrity: the PKCS #12 password MAC, HMAC-SHA256 with its key from the RFC 7292 Appendix B KDF over SHA-256.
 * Every derivation runs PKCS12_ITERATIONS times (docs/downloads.md#pkcs12 says why that figure and what it costs).
 */

/**
 * Iterations of each password derivation (the two PBKDF2 and the MAC KDF). 600,000 is OWASP's figure for
 * PBKDF2-HMAC-SHA256 (2023). The MAC counts as much as the encryption: an attacker who holds the file tests
 * password guesses against whichever derivation is cheaper, so both run the same count.
 */
export const PKCS12_ITERATIONS = 600_000;
export const PKCS12_PASSWORD_MIN_LENGTH = 8;
export const PKCS12_PASSWORD_MAX_LENGTH = 128;

const KEY_BAG = '1.2.840.113549.1.12.10.1.2'; // pkcs8ShroudedKeyBag
const CERT_BAG = '1.2.840.113549.1.12.10.1.3'; // certBag
const FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const LOCAL_KEY_ID = '1.2.840.113549.1.9.21';

const ENCRYPTION = { name: 'AES-CBC', length: 256 };
const PRF_HASH = 'SHA-256';

export interface Pkcs12Input {
  /** The private key, PKCS #8 DER (unencrypted: it is encrypted here). */
  privateKeyPkcs8Der: Buffer;
  /** The key's certificate, DER. */
  certificateDer: Buffer;
  /** The issuing CA's certificate followed by each parent up to the root, DER. */
  chainDer: Buffer[];
  password: string;
  /** Shown by key stores as the entry's name (Windows, Java keytool); on the key and its certificate. */
  friendlyName?: string;
}

/** Why a password cannot protect a PKCS #12 file, or null when it can. The API turns this into a 400. */
export function pkcs12PasswordProblem(password: string | undefined): string | null {
  if (password === undefined || password.length === 0) return 'a password is required';
  if (password.length < PKCS12_PASSWORD_MIN_LENGTH) return `the password must have at least ${PKCS12_PASSWORD_MIN_LENGTH} characters`;
  if (password.length > PKCS12_PASSWORD_MAX_LENGTH) return `the password must have at most ${PKCS12_PASSWORD_MAX_LENGTH} characters`;
  // A NUL would end the password early in the BMPString the MAC key is derived from (and in C tools' strings).
  if (CONTROL_CHARS.test(password)) return 'the password must not contain control characters';
  return null;
}

/** The key, its certificate and the chain as one PKCS #12 file (DER), protected by the password. */
export async function pkcs12(input: { privateKeyPkcs8Der: Buffer; certificateDer: Buffer; chainDer: Buffer[]; password: string; friendlyName?: string }): Promise<Buffer> {
  const problem = pkcs12PasswordProblem(input.password);
  if (problem) throw new Error(problem);
  const certificate = new X509Certificate(input.certificateDer);
  if (!createPublicKey(createPrivateKey({ key: input.privateKeyPkcs8Der, format: 'der', type: 'pkcs8' })).equals(certificate.publicKey)) {
    throw new Error('the private key does not belong to the certificate');
  }
  const password = toArrayBuffer(Buffer.from(input.password, 'utf8'));
  const encryption = { password, contentEncryptionAlgorithm: ENCRYPTION, hmacHashAlgorithm: PRF_HASH, iterationCount: PKCS12_ITERATIONS };

  // The key and its certificate carry the same localKeyId, which is how readers pair them.
  const entryAttributes = [attribute(LOCAL_KEY_ID, octetString(createHash('sha256').update(input.certificateDer).digest()))];
  if (input.friendlyName !== undefined) entryAttributes.push(attribute(FRIENDLY_NAME, bmpString(input.friendlyName)));

  const keyBag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: pkijs.PrivateKeyInfo.fromBER(input.privateKeyPkcs8Der) });
  await keyBag.makeInternalValues(encryption, engine);
  const certificateBags = [input.certificateDer, ...input.chainDer].map(
    (der, index) =>
      new pkijs.SafeBag({
        bagId: CERT_BAG,
        bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(der) }),
        ...(index === 0 ? { bagAttributes: entryAttributes } : {}),
      }),
  );
  const authenticatedSafe = new pkijs.AuthenticatedSafe({
    parsedValue: {
      safeContents: [
        // privacyMode 0: plain Data; the key bag inside is encrypted on its own (above).
        { privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [new pkijs.SafeBag({ bagId: KEY_BAG, bagValue: keyBag, bagAttributes: entryAttributes })] }) },
        // privacyMode 1: password-encrypted EncryptedData.
        { privacyMode: 1, value: new pkijs.SafeContents({ safeBags: certificateBags }) },
      ],
    },
  });
  await authenticatedSafe.makeInternalValues({ safeContents: [{}, { ...encryption }] }, engine);
  const pfx = new pkijs.PFX({ parsedValue: { integrityMode: 0, authenticatedSafe } });
  await pfx.makeInternalValues({ password, iterations: PKCS12_ITERATIONS, pbkdf2HashAlgorithm: PRF_HASH, hmacHashAlgorithm: PRF_HASH }, engine);
  return Buffer.from(pfx.toSchema().toBER(false));
}

function attribute(type: string, value: Buffer): pkijs.Attribute {
  return pkijs.Attribute.fromBER(sequence(oid(type), set(value)));
}

/** BMPString: UTF-16 big-endian. */
function bmpString(text: string): Buffer {
  return tlv(0x1e, utf16be(text));
}

function utf16be(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16();
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * pkijs's engine on node's WebCrypto, handed to each pkijs call here (never installed globally), with one change:
 * the PKCS #12 MAC key. pkijs derives it in JavaScript on the event loop (1.3 s at 600,000 iterations, during which
 * the process answers nothing); here it is the same KDF over node's native SHA-256, about twice as fast and sliced
 * so that other requests run in between. The PBKDF2 derivations already run in node's thread pool.
 */
class Pkcs12Engine extends pkijs.CryptoEngine {
  override async stampDataWithPassword(parameters: pkijs.CryptoEngineStampDataWithPasswordParams): Promise<ArrayBuffer> {
    if (parameters.hashAlgorithm.toUpperCase() !== 'SHA-256') return super.stampDataWithPassword(parameters);
    const password = new TextDecoder('utf-8', { fatal: true }).decode(parameters.password);
    const key = await pkcs12MacKey(password, Buffer.from(parameters.salt), parameters.iterationCount);
    return toArrayBuffer(createHmac('sha256', key).update(Buffer.from(parameters.contentToStamp)).digest());
  }
}

const engine = new Pkcs12Engine({ name: 'node', crypto: globalThis.crypto });

/** Hash input block size (v) of SHA-256, in bytes (RFC 7292 B.2). */
const SHA256_BLOCK = 64;

/**
 * The 32-byte MAC key of RFC 7292 Appendix B.2 with SHA-256 (ID 3: "integrity key"). One output block suffices
 * (u = 32 bytes = the HMAC-SHA256 key), so the I-update step of B.2 step 6C is never needed.
 */
export async function pkcs12MacKey(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const diversifier = Buffer.alloc(SHA256_BLOCK, 3);
  // The password as a BMPString (UTF-16 big-endian) with two zero bytes at the end (B.1).
  const bmp = utf16be(`${password}\u0000`);
  const repeat = (bytes: Buffer): Buffer => {
    const out = Buffer.alloc(SHA256_BLOCK * Math.ceil(bytes.length / SHA256_BLOCK));
    for (let i = 0; i < out.length; i++) out[i] = bytes[i % bytes.length];
    return out;
  };
  let digest = createHash('sha256').update(Buffer.concat([diversifier, repeat(salt), repeat(bmp)])).digest();
  const slicer = new TimeSlicer(10);
  for (let i = 1; i < iterations; i++) {
    digest = hash('sha256', digest, 'buffer');
    if (i % 4096 === 0) await slicer.maybeYield();
  }
  return digest;
}
