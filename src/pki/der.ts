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

/** The raw bytes of the first element inside the outer SEQUENCE (the signed "to be signed" part). */
export function firstInnerElement(der: Uint8Array): Buffer {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('not a single DER SEQUENCE');
  const inner = readTlv(der, outer.contentStart);
  return Buffer.from(der.subarray(inner.start, inner.end));
}
