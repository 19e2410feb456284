import { bitString, explicit, sequence, smallInteger, time, tlv } from './der-writer';
import { authorityKeyIdentifier, extension, EXTENSION_OIDS } from './extensions';
import { signatureAlgorithmIdentifier, SigningKey } from './signing';

/** RFC 5280 §5.3.1 reason codes we accept. certificateHold and removeFromCRL are not offered: revocation is final. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** CRLReason ENUMERATED values (RFC 5280 §5.3.1), in CRL entries and OCSP revokedInfo alike. */
export const REASON_CODES: Record<RevocationReason, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

export interface CrlEntry {
  serial: Buffer;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlTemplate {
  /** DER of the issuer Name (the CA's subject, byte for byte). */
  issuer: Buffer;
  issuerKeyId: Buffer;
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** The reasonCode entry extension, one DER per reason (shared by every entry with that reason). */
const REASON_EXTENSIONS = new Map<RevocationReason, Buffer>(
  REVOCATION_REASONS.map((reason) => [reason, sequence(extension(EXTENSION_OIDS.cRLReason, false, tlv(0x0a, Buffer.from([REASON_CODES[reason]]))).der)]),
);

/** One revoked certificate as stored: serial in hex (big-endian magnitude), revocation time as an ISO string or Date. */
export interface StoredCrlEntry {
  serial: string;
  revokedAt: string | Date;
  /** null: unspecified. */
  reason: RevocationReason | null;
}

/** Serials are at most 20 bytes (RFC 5280 §4.1.2.2); the stored column allows 64 hex digits, so 32. */
const MAX_SERIAL_BYTES = 32;
/** SEQUENCE(2) + INTEGER(2 + 1 pad + 32) + GeneralizedTime(2 + 15) + the longest reasonCode extension. */
const MAX_ENTRY_BYTES = 2 + 2 + 1 + MAX_SERIAL_BYTES + 2 + 15 + Math.max(...[...REASON_EXTENSIONS.values()].map((der) => der.length));

/** Entries are written into slabs of this size: few allocations, at most one slab of slack. */
const SLAB_BYTES = 4 * 1024 * 1024;

/**
 * The revokedCertificates of a CRL, encoded page by page (docs/architecture.md "CRLs"): each page of entries is
 * written in place into large slabs, so a CRL of a million entries costs one pass and about its own size in memory, and the
 * SEQUENCE header that needs the total length is written only when the CRL is assembled.
 */
export class CrlEntriesEncoder {
  private readonly chunks: Buffer[] = [];
  private slab = Buffer.alloc(0);
  private used = 0;
  private bytes = 0;
  private entries = 0;

  get count(): number {
    return this.entries;
  }

  /** Bytes of the entries so far (the content of the revokedCertificates SEQUENCE). */
  get length(): number {
    return this.bytes;
  }

  /** Encodes one page of entries, appended to the current slab (a new one when it has no room for the page). */
  addPage(page: readonly StoredCrlEntry[]): void {
    if (page.length === 0) return;
    this.reserve(page.length);
    let pos = this.used;
    for (const entry of page) pos = this.writeEntry(this.slab, pos, entry.serial, entry.revokedAt, entry.reason);
    this.advance(pos, page.length);
  }

  /**
   * Encodes one page of rows given as [serial, revokedAt, reason] arrays (database drivers' raw rows: no object per
   * row), as addPage does.
   */
  addRows(rows: readonly (readonly [string, string | Date, RevocationReason | null])[]): void {
    if (rows.length === 0) return;
    this.reserve(rows.length);
    let pos = this.used;
    for (const row of rows) pos = this.writeEntry(this.slab, pos, row[0], row[1], row[2]);
    this.advance(pos, rows.length);
  }

  /** Makes room in the current slab for `count` entries (a new slab when it has none). */
  private reserve(count: number): void {
    const room = count * MAX_ENTRY_BYTES;
    if (this.slab.length - this.used < room) {
      this.seal();
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, room));
      this.used = 0;
    }
  }

  private advance(pos: number, count: number): void {
    this.bytes += pos - this.used;
    this.used = pos;
    this.entries += count;
  }

  /** Copies the entries into `target` at `offset` and releases them; answers the offset after them. */
  drainInto(target: Buffer, offset: number): number {
    this.seal();
    for (const chunk of this.chunks) offset += chunk.copy(target, offset);
    this.chunks.length = 0;
    return offset;
  }

  /** Moves the written part of the current slab to the chunks (only written bytes are ever read). */
  private seal(): void {
    if (this.used > 0) this.chunks.push(this.slab.subarray(0, this.used));
    this.slab = Buffer.alloc(0);
    this.used = 0;
  }

  private writeEntry(out: Buffer, start: number, serial: string, revokedAt: string | Date, reasonName: RevocationReason | null): number {
    const odd = serial.length % 2;
    const bytes = (serial.length + odd) / 2;
    if (bytes === 0 || bytes > MAX_SERIAL_BYTES) throw new RangeError(`CRL entry serial of ${serial.length} hex digits`);
    // The magnitude's first non-zero byte (a zero serial keeps its last byte), and a 0x00 pad when its top bit is set.
    let first = 0;
    while (first < bytes - 1 && hexByte(serial, first, odd) === 0) first++;
    const pad = hexByte(serial, first, odd) & 0x80 ? 1 : 0;
    const integerLength = bytes - first + pad;
    const reason = reasonName === null || reasonName === 'unspecified' ? undefined : REASON_EXTENSIONS.get(reasonName);
    if (reasonName !== null && reasonName !== 'unspecified' && !reason) throw new RangeError(`unknown revocation reason ${String(reasonName)}`);
    const iso = canonicalIso(revokedAt);
    const year = (iso.charCodeAt(0) - 48) * 1000 + (iso.charCodeAt(1) - 48) * 100 + (iso.charCodeAt(2) - 48) * 10 + (iso.charCodeAt(3) - 48);
    if (year < 1950) throw new RangeError('CRL entry revocation time before 1950');
    // RFC 5280 §5.1.2.6 / §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, UTC, whole seconds.
    const generalized = year >= 2050;
    const timeLength = generalized ? 15 : 13;
    const contentLength = 2 + integerLength + 2 + timeLength + (reason?.length ?? 0);
    let pos = start;
    out[pos++] = 0x30;
    out[pos++] = contentLength; // < 0x80: MAX_ENTRY_BYTES keeps every entry in the short form
    out[pos++] = 0x02;
    out[pos++] = integerLength;
    if (pad) out[pos++] = 0;
    for (let i = first; i < bytes; i++) out[pos++] = hexByte(serial, i, odd);
    out[pos++] = generalized ? 0x18 : 0x17;
    out[pos++] = timeLength;
    for (const at of generalized ? TIME_FROM_ISO_GENERALIZED : TIME_FROM_ISO_UTC) out[pos++] = iso.charCodeAt(at);
    out[pos++] = 0x5a; // Z
    if (reason) pos += reason.copy(out, pos);
    return pos;
  }
}

const HEX_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUES['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_VALUES['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/** Byte `index` of a hex string (`odd`: an implied leading 0 digit). */
function hexByte(hex: string, index: number, odd: number): number {
  const at = index * 2 - odd;
  const high = at < 0 ? 0 : hexDigit(hex.charCodeAt(at));
  return (high << 4) | hexDigit(hex.charCodeAt(at + 1));
}

function hexDigit(code: number): number {
  const value = code < 128 ? HEX_VALUES[code] : -1;
  if (value < 0) throw new RangeError('CRL entry serial is not hex');
  return value;
}

/** Positions in YYYY-MM-DDTHH:MM:SS of the digits of GeneralizedTime and UTCTime (before the Z). */
const TIME_FROM_ISO_GENERALIZED = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
const TIME_FROM_ISO_UTC = TIME_FROM_ISO_GENERALIZED.slice(2);

/**
 * A revocation time as YYYY-MM-DDTHH:MM:SS…Z, truncated to the second. The canonical form the service stores
 * (toISOString) is used as it is: a million Date parses would cost more than the rest of the entry.
 */
function canonicalIso(value: string | Date): string {
  if (typeof value === 'string' && isCanonicalIso(value)) return value;
  const ms = (value instanceof Date ? value : new Date(value)).getTime();
  if (!Number.isFinite(ms)) throw new RangeError('CRL entry revocation time is not a date');
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString();
  if (!isCanonicalIso(iso)) throw new RangeError('CRL entry revocation time out of range');
  return iso;
}

const ISO_UTC = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?Z$/;

function isCanonicalIso(value: string): boolean {
  return ISO_UTC.test(value);
}

function lengthOctets(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Room left for the signature BIT STRING: RSA 8192 (1024 bytes) and every ECDSA signature fit. */
const MAX_SIGNATURE_FIELD = 1100;
/** Room left for the outer SEQUENCE's tag and length (lengths below 2^32). */
const OUTER_HEADER_ROOM = 6;

export type CrlHeader = Omit<CrlTemplate, 'entries'>;

/**
 * The parts of a CRL around its entries, all known before the entries are read (the CRL number is taken first): a
 * CRL is assembled from them by whoever holds the entries (a worker thread: revocation/crl-worker.thread.ts).
 */
export interface CrlFrame {
  /** version, signature, issuer, thisUpdate, nextUpdate (the TBS content before revokedCertificates). */
  before: Uint8Array;
  /** [0] crlExtensions: AKI and CRL number. */
  after: Uint8Array;
  /** The signatureAlgorithm field, repeated after the TBS. */
  signatureAlgorithm: Uint8Array;
}

/**
 * A CRL's TBS in one buffer with room in front for the outer SEQUENCE header and behind for the signature fields, so
 * it is signed in place (signAssembledCrl) without another copy of the entries.
 */
export interface AssembledCrl {
  buffer: Buffer;
  tbsStart: number;
  tbsEnd: number;
}

export function crlFrame(header: CrlHeader, algorithm: SigningKey['algorithm']): CrlFrame {
  const signatureAlgorithm = signatureAlgorithmIdentifier(algorithm);
  return {
    before: Buffer.concat([smallInteger(1) /* v2 */, signatureAlgorithm, header.issuer, time(header.thisUpdate), time(header.nextUpdate)]),
    after: explicit(
      0,
      sequence(authorityKeyIdentifier(header.issuerKeyId).der, extension(EXTENSION_OIDS.cRLNumber, false, smallInteger(header.crlNumber)).der),
    ),
    signatureAlgorithm,
  };
}

/**
 * The TBS around entries already encoded: one allocation for the whole CRL (the revokedCertificates and TBS lengths
 * are known only now: headers are written in front of the copied entries). The encoder is emptied.
 */
export function assembleCrl(frame: CrlFrame, entries: CrlEntriesEncoder): AssembledCrl {
  const revokedHeader = entries.count ? Buffer.concat([Buffer.from([0x30]), lengthOctets(entries.length)]) : Buffer.alloc(0);
  const tbsContentLength = frame.before.length + revokedHeader.length + (entries.count ? entries.length : 0) + frame.after.length;
  const tbsHeader = Buffer.concat([Buffer.from([0x30]), lengthOctets(tbsContentLength)]);
  const tbsLength = tbsHeader.length + tbsContentLength;
  const buffer = Buffer.alloc(OUTER_HEADER_ROOM + tbsLength + frame.signatureAlgorithm.length + MAX_SIGNATURE_FIELD);
  let pos = OUTER_HEADER_ROOM;
  for (const part of [tbsHeader, frame.before, revokedHeader]) {
    buffer.set(part, pos);
    pos += part.length;
  }
  pos = entries.drainInto(buffer, pos);
  buffer.set(frame.after, pos);
  pos += frame.after.length;
  if (pos - OUTER_HEADER_ROOM !== tbsLength) throw new Error('CRL assembly: TBS length mismatch');
  return { buffer, tbsStart: OUTER_HEADER_ROOM, tbsEnd: pos };
}

/** Signs an assembled CRL's TBS in place, once (RFC 5280 §5.1), and answers the CRL's DER (a view of the same buffer). */
export async function signAssembledCrl(crl: AssembledCrl, signatureAlgorithm: Uint8Array, issuerKey: SigningKey): Promise<Buffer> {
  const { buffer, tbsStart, tbsEnd } = crl;
  if (tbsStart !== OUTER_HEADER_ROOM) throw new Error('CRL assembly: no room for the outer header');
  const signature = bitString(await issuerKey.sign(buffer.subarray(tbsStart, tbsEnd)));
  if (tbsEnd + signatureAlgorithm.length + signature.length > buffer.length) throw new Error('CRL signature too long');
  let pos = tbsEnd;
  buffer.set(signatureAlgorithm, pos);
  pos += signatureAlgorithm.length;
  pos += signature.copy(buffer, pos);
  const outerHeader = Buffer.concat([Buffer.from([0x30]), lengthOctets(pos - OUTER_HEADER_ROOM)]);
  const start = OUTER_HEADER_ROOM - outerHeader.length;
  outerHeader.copy(buffer, start);
  return buffer.subarray(start, pos);
}

/**
 * Assembles and signs a v2 CRL with AKI and CRL number (RFC 5280 §5.1, §5.2.1, §5.2.3) around entries already
 * encoded: one allocation for the whole CRL, the entries copied into it once, one signature over the TBS in place.
 * The encoder is emptied.
 */
export async function signEncodedCrl(header: CrlHeader, entries: CrlEntriesEncoder, issuerKey: SigningKey): Promise<Buffer> {
  const frame = crlFrame(header, issuerKey.algorithm);
  return signAssembledCrl(assembleCrl(frame, entries), frame.signatureAlgorithm, issuerKey);
}

/** Encodes and signs a v2 CRL from a list of entries (linear in their number). */
export async function signCrl(template: CrlTemplate, issuerKey: SigningKey): Promise<Buffer> {
  const { entries, ...header } = template;
  const encoder = new CrlEntriesEncoder();
  encoder.addPage(entries.map((entry) => ({ serial: entry.serial.toString('hex'), revokedAt: entry.revokedAt, reason: entry.reason })));
  return signEncodedCrl(header, encoder, issuerKey);
}
