import { createHash, createHmac } from 'node:crypto';
import { TPM_HASHES } from './constants';
import { u32 } from './marshal';
import { Errors } from '../../common/errors';

function hashOf(alg: number): { name: string; size: number } {
  const hash = TPM_HASHES[alg];
  if (!hash) throw Errors.tpmAlgorithmUnsupported(`hash algorithm 0x${alg.toString(16)} is not supported`);
  return hash;
}

/** A label with its terminating zero octet (Part 1, 11.4.10.1: the label is a null-terminated string). */
function labelBytes(label: string): Buffer {
  return Buffer.concat([Buffer.from(label, 'ascii'), Buffer.alloc(1)]);
}

/**
 * KDFa (Part 1, 11.4.10.2): SP 800-108 counter mode with HMAC-H:
 * K(i) = HMAC(key, [i]32 || Label || 00 || contextU || contextV || [bits]32), concatenated and cut to `bits`.
 */
export function kdfa(hashAlg: number, key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const hash = hashOf(hashAlg);
  const bytes = Math.ceil(bits / 8);
  const blocks: Buffer[] = [];
  for (let i = 1; blocks.length * hash.size < bytes; i++) {
    blocks.push(createHmac(hash.name, key).update(Buffer.concat([u32(i), labelBytes(label), contextU, contextV, u32(bits)])).digest());
  }
  return Buffer.concat(blocks).subarray(0, bytes);
}

/**
 * KDFe (Part 1, 11.4.10.3): SP 800-56A concatenation KDF for ECDH:
 * K(i) = H([i]32 || Z || Label || 00 || partyUInfo || partyVInfo), concatenated and cut to `bits`.
 */
export function kdfe(hashAlg: number, z: Buffer, label: string, partyU: Buffer, partyV: Buffer, bits: number): Buffer {
  const hash = hashOf(hashAlg);
  const bytes = Math.ceil(bits / 8);
  const blocks: Buffer[] = [];
  for (let i = 1; blocks.length * hash.size < bytes; i++) {
    blocks.push(createHash(hash.name).update(Buffer.concat([u32(i), z, labelBytes(label), partyU, partyV])).digest());
  }
  return Buffer.concat(blocks).subarray(0, bytes);
}
