/**
 * A minimal DER writer for the structures we sign on hot paths (certificates, CRLs). Values are
 * encoded directly into Buffers: no intermediate object model, linear in the output size.
 * Every function returns a complete TLV.
 */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

export const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
/** [n] EXPLICIT, constructed context-specific. */
export const explicit = (n: number, content: Buffer): Buffer => tlv(0xa0 | n, content);
/** [n] IMPLICIT over a primitive value (the bytes of the value, no inner tag). */
export const implicitPrimitive = (n: number, value: Buffer): Buffer => tlv(0x80 | n, value);
/** [n] IMPLICIT over a constructed value (SEQUENCE contents). */
export const implicitConstructed = (n: number, ...parts: Buffer[]): Buffer => tlv(0xa0 | n, Buffer.concat(parts));

export const NULL = Buffer.from([0x05, 0x00]);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, with a 0x00 pad when the top bit is set). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  return tlv(0x02, trimmed[0] & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : Buffer.from(trimmed));
}

export function smallInteger(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('smallInteger takes a non-negative safe integer');
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Buffer.from(bytes.length ? bytes : [0]));
}

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  let encoded = oidCache.get(dotted);
  if (!encoded) {
    // BigInt: UUID-derived arcs (2.25.<128-bit>) do not fit a double.
    const arcs = dotted.split('.').map(BigInt);
    const bytes: number[] = [];
    for (const arc of [arcs[0] * 40n + arcs[1], ...arcs.slice(2)]) {
      const chunk: number[] = [Number(arc & 0x7fn)];
      for (let v = arc >> 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
      bytes.push(...chunk);
    }
    encoded = tlv(0x06, Buffer.from(bytes));
    oidCache.set(dotted, encoded);
  }
  return encoded;
}

export const octetString = (value: Buffer): Buffer => tlv(0x04, value);
/** BIT STRING with no unused bits (signatures, keys). */
export const bitString = (value: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), value]));
export const utf8String = (value: string): Buffer => tlv(0x0c, Buffer.from(value, 'utf8'));
export const printableString = (value: string): Buffer => tlv(0x13, Buffer.from(value, 'latin1'));

/**
 * RFC 5280 §4.1.2.5: UTCTime (YYMMDDHHMMSSZ) from 1950 through 2049, GeneralizedTime (YYYYMMDDHHMMSSZ) otherwise
 * (a two-digit year means 1950–2049, so an earlier date written as UTCTime would read a century late);
 * always UTC, whole seconds.
 */
export function time(date: Date): Buffer {
  const iso = new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString(); // 2026-11-25T23:59:01.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z';
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'latin1')) : tlv(0x18, Buffer.from(digits, 'latin1'));
}

/**
 * A named-bit BIT STRING (KeyUsage, ReasonFlags): bit 0 is the most significant bit of the first byte;
 * trailing zero bits are dropped and counted as unused, as DER requires (X.690 §11.2.2).
 */
export function namedBits(bits: number[]): Buffer {
  const highest = Math.max(-1, ...bits);
  if (highest < 0) return Buffer.from([0x03, 0x01, 0x00]);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[Math.floor(bit / 8)] |= 0x80 >> bit % 8;
  const unused = 7 - (highest % 8);
  return tlv(0x03, Buffer.concat([Buffer.from([unused]), bytes]));
}
