import { createHash, createSign, KeyObject } from 'node:crypto';
import { yieldToEventLoop } from '../common/yield';

/**
 * Inputs above this are hashed in slices of this size with a turn of the event loop between them (a CRL of a million
 * entries has a ~46 MB TBS: hashed at once, or copied whole into an async crypto job, it would stall every other
 * request for tens of ms; docs/architecture.md "CRLs"). Smaller inputs (certificates, OCSP responses) go at once.
 */
export const HASH_SLICE_BYTES = 4 * 1024 * 1024;

/** The digest of `data`, computed at once when it is small, else slice by slice (see HASH_SLICE_BYTES). */
export async function digestInSlices(algorithm: 'sha256' | 'sha384', data: Buffer): Promise<Buffer> {
  const hash = createHash(algorithm);
  await feedInSlices(data, (slice) => hash.update(slice));
  return hash.digest();
}

/**
 * A signature with a key held in this process over a large input: hashed slice by slice (OpenSSL's streaming sign, the
 * same signature as crypto.sign gives), signed at the end. Only for inputs above HASH_SLICE_BYTES; smaller ones are
 * signed with the async crypto.sign (off the event loop, the copy it makes is small).
 */
export async function signInSlices(algorithm: 'sha256' | 'sha384', data: Buffer, key: KeyObject): Promise<Buffer> {
  const signer = createSign(algorithm);
  await feedInSlices(data, (slice) => signer.update(slice));
  return signer.sign(key);
}

async function feedInSlices(data: Buffer, feed: (slice: Buffer) => void): Promise<void> {
  for (let offset = 0; offset < data.length; offset += HASH_SLICE_BYTES) {
    if (offset > 0) await yieldToEventLoop();
    feed(data.subarray(offset, offset + HASH_SLICE_BYTES));
  }
}
