import { randomBytes } from 'node:crypto';

/**
 * A 20-byte serial from the CSPRNG with the top bit cleared (positive INTEGER) and a non-zero first
 * byte (minimal DER): 159 random bits, above the 64 bits RFC 5280/CA-B Forum ask and the 128 we promise.
 */
export function randomSerial(random: (size: number) => Buffer = randomBytes): Buffer {
  for (;;) {
    const serial = random(20);
    serial[0] &= 0x7f;
    if (serial[0] !== 0) return serial;
  }
}
