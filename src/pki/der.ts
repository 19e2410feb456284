/** PEM framing and the few raw DER operations the schema library does not give us. */

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/;

export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Returns the DER inside the first PEM block with one of the given labels, or undefined. */
export function pemDecode(pem: string, labels: readonly string[]): Buffer | undefined {
  const match = PEM_BLOCK.exec(pem);
  if (!match || !labels.includes(match[1])) return undefined;
  const body = match[2].replace(/[\r\n]/g, '');
  if (body.length === 0) return undefined;
  return Buffer.from(body, 'base64');
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
