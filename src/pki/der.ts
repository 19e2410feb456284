/** PEM framing and the few raw DER operations the schema library does not give us. */

export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Why a text is not one PEM block (the message completes a sentence: "csr <message>"). */
export class PemError extends Error {}

const BEGIN = '-----BEGIN ';
const END = '-----END ';
const DASHES = '-----';

/**
 * The DER of a text that is exactly one PEM block (RFC 7468) with one of `labels`, and nothing but whitespace
 * around it. A second block or any other text is refused rather than ignored: what a caller sends is what gets
 * parsed, and a reviewer reading the request sees exactly what was certified. The base64 must be canonical
 * (only the alphabet, padding at the end); line breaks and spaces inside it are allowed.
 */
export function decodeSinglePem(text: string, labels: readonly string[]): Buffer {
  const pem = text.trim();
  const beginAt = pem.indexOf(BEGIN);
  if (beginAt < 0) throw new PemError(`must be a PEM block labelled ${labels[0]}`);
  if (beginAt > 0) throw new PemError('has text before its PEM block; only whitespace may surround it');
  const labelEnd = pem.indexOf(DASHES, BEGIN.length);
  const label = labelEnd < 0 ? '' : pem.slice(BEGIN.length, labelEnd);
  if (!labels.includes(label)) {
    throw new PemError(`must be a PEM block labelled ${labels[0]}, not ${/^[A-Z0-9 ]{1,40}$/.test(label) ? label : 'something else'}`);
  }
  const endAt = pem.indexOf(END, labelEnd);
  const endLine = `${END}${label}${DASHES}`;
  if (endAt < 0 || !pem.startsWith(endLine, endAt)) throw new PemError(`has no "${endLine}" line after its BEGIN line`);
  const body = pem.slice(labelEnd + DASHES.length, endAt);
  if (body.includes(BEGIN)) throw new PemError('holds a PEM block inside another; send exactly one');
  const rest = pem.slice(endAt + endLine.length);
  if (rest.length > 0) {
    throw new PemError(rest.includes(BEGIN) ? 'holds more than one PEM block; send exactly one' : 'has text after its PEM block; only whitespace may surround it');
  }
  if (!/^[ \t]*\r?\n/.test(body)) throw new PemError('must have a line break after its BEGIN line');
  const base64 = body.replace(/\s+/g, '');
  if (base64.length === 0 || base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
    throw new PemError('is a PEM block whose body is not valid base64');
  }
  return Buffer.from(base64, 'base64');
}

/**
 * Reads one DER TLV at `offset` and returns its full extent. Used to take the exact bytes of a
 * signed structure (e.g. CertificationRequestInfo) so a signature is checked over what was signed,
 * not over our re-encoding of it. Throws on anything malformed or running past the buffer.
 */
export function readTlv(der: Uint8Array, offset: number): { start: number; contentStart: number; end: number; tag: number } {
  if (offset + 2 > der.length) throw new Error('truncated DER');
  const tag = der[offset];
  const lengthByte = der[offset + 1];
  let cursor = offset + 2;
  let length: number;
  if (lengthByte < 0x80) {
    length = lengthByte;
  } else {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    if (cursor + count > der.length) throw new Error('truncated DER');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[cursor + i];
    cursor += count;
  }
  const end = cursor + length;
  if (end > der.length) throw new Error('truncated DER');
  return { start: offset, contentStart: cursor, end, tag };
}

export type Tlv = ReturnType<typeof readTlv>;

/** The elements inside a constructed TLV, which must exactly fill it. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const items: Tlv[] = [];
  for (let cursor = parent.contentStart; cursor < parent.end; ) {
    const item = readTlv(der, cursor);
    if (item.end > parent.end) throw new Error('DER element overruns its parent');
    items.push(item);
    cursor = item.end;
  }
  return items;
}

export function content(der: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(der.buffer, der.byteOffset + tlv.contentStart, tlv.end - tlv.contentStart);
}

/** Dotted form of an OBJECT IDENTIFIER (the TLV must be tagged 0x06). */
export function decodeOid(der: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end === tlv.contentStart) throw new Error('expected an OBJECT IDENTIFIER');
  const bytes = content(der, tlv);
  const arcs: bigint[] = [];
  let value = 0n;
  for (const byte of bytes) {
    value = (value << 7n) | BigInt(byte & 0x7f);
    if (value >= 1n << 160n) throw new Error('OID arc too large');
    if (!(byte & 0x80)) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (bytes[bytes.length - 1] & 0x80) throw new Error('truncated OID');
  const first = arcs.shift()!;
  const top = first < 80n ? first / 40n : 2n;
  return [top, first - top * 40n, ...arcs].join('.');
}

/** The text of a directory string (UTF8String, PrintableString, IA5String, TeletexString, BMPString). */
export function decodeString(der: Uint8Array, tlv: Tlv): string {
  const bytes = content(der, tlv);
  switch (tlv.tag) {
    case 0x0c:
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    case 0x13:
    case 0x16:
    case 0x14:
      return bytes.toString('latin1');
    case 0x1e:
      return new TextDecoder('utf-16be', { fatal: true }).decode(bytes);
    default:
      throw new Error(`unsupported string type 0x${tlv.tag.toString(16)}`);
  }
}
