/**
 * Streaming reader for device-serial allow-lists uploaded over HTTP, as text/csv or as a JSON array of
 * strings. The body is read chunk by chunk and validated serials come out in batches, so memory is
 * bounded by one chunk plus one CSV line or one JSON string, whatever the size of the body.
 *
 * Batches are yielded before the whole body has been read: a later error (bad serial, limit exceeded)
 * arrives after earlier batches. Callers must stage the batches and commit only once the generator has
 * finished without throwing. Duplicates are passed through; de-duplicating is the caller's business.
 */
import { TimeSlicer } from '../common/yield';

export const DEVICE_SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:\/-]{0,63}$/;

export class SerialListError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SerialListError';
  }
}

export interface SerialListLimits {
  maxSerials: number;
  maxBytes: number;
}

export const SERIAL_BATCH_SIZE = 1000;
/** Bytes parsed between checks of the time slice; about a millisecond of work. */
const PARSE_SLICE_BYTES = 64 * 1024;
/** Longest stretch of parsing before the event loop gets a turn. */
const PARSE_SLICE_MS = 10;
/** A CSV line may carry other columns, but not without bound: the line is held in memory until its end. */
export const MAX_CSV_LINE_LENGTH = 4096;
const MAX_SERIAL_LENGTH = 64;

export async function* readSerials(
  source: AsyncIterable<Buffer | string>,
  format: 'csv' | 'json',
  limits: SerialListLimits,
): AsyncGenerator<string[]> {
  const out = new Batches(limits.maxSerials);
  const reader = format === 'csv' ? new CsvReader(out) : format === 'json' ? new JsonReader(out) : undefined;
  if (!reader) throw new SerialListError(`unsupported serial list format ${JSON.stringify(format)}`);
  // Streaming + fatal: a UTF-8 sequence split across chunks is held back, not mangled; an invalid one throws.
  // The BOM is kept (ignoreBOM) so that JSON byte offsets stay exact; the readers skip it themselves.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let bytes = 0;
  const decode = (chunk?: Buffer): string => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw new SerialListError(`the list is not valid UTF-8 (within its first ${bytes} bytes)`);
    }
  };

  // Parsing is CPU work on the request thread: however large a chunk the source hands over, it is read in slices,
  // and the event loop gets a turn whenever one has run for PARSE_SLICE_MS.
  const slicer = new TimeSlicer(PARSE_SLICE_MS);
  for await (const chunk of source) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    bytes += buffer.length;
    // Checked before the chunk is looked at, so an oversized body is refused as soon as it is too big.
    if (bytes > limits.maxBytes) throw new SerialListError(`the list is larger than ${limits.maxBytes} bytes`);
    for (let start = 0; start < buffer.length; start += PARSE_SLICE_BYTES) {
      reader.feed(decode(buffer.subarray(start, start + PARSE_SLICE_BYTES)));
      yield* out.takeFull();
      await slicer.maybeYield();
    }
  }
  reader.feed(decode());
  reader.end();
  yield* out.takeAll();
}

/** Validates and counts serials and groups them into batches. */
class Batches {
  private count = 0;
  private current: string[] = [];
  private full: string[][] = [];

  constructor(private readonly maxSerials: number) {}

  add(serial: string, where: string): void {
    if (!DEVICE_SERIAL_PATTERN.test(serial)) {
      throw new SerialListError(
        `${where}: invalid device serial ${quote(serial)} (1-64 characters: letters, digits and . _ : / -, starting with a letter or digit)`,
      );
    }
    if (++this.count > this.maxSerials) throw new SerialListError(`${where}: the list has more than ${this.maxSerials} serials`);
    this.current.push(serial);
    if (this.current.length === SERIAL_BATCH_SIZE) {
      this.full.push(this.current);
      this.current = [];
    }
  }

  takeFull(): string[][] {
    const full = this.full;
    this.full = [];
    return full;
  }

  takeAll(): string[][] {
    const all = this.takeFull();
    if (this.current.length > 0) all.push(this.current);
    this.current = [];
    return all;
  }
}

/** For messages: at most 64 characters, JSON-quoted so control characters and newlines cannot forge log lines. */
function quote(value: string): string {
  return JSON.stringify(value.length > MAX_SERIAL_LENGTH ? `${value.slice(0, MAX_SERIAL_LENGTH)}…` : value);
}

interface Reader {
  feed(text: string): void;
  end(): void;
}

/**
 * CSV (RFC 4180 subset): one record per line (LF or CRLF), the serial is the first field. A quoted field
 * may not span lines: its line is refused, rather than letting the next line be read as a record.
 */
class CsvReader implements Reader {
  /** The start of a line whose end has not arrived yet. */
  private partial = '';
  private lineNumber = 0;
  private seenRecord = false;

  constructor(private readonly out: Batches) {}

  feed(text: string): void {
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      const line = this.partial + text.slice(start, newline);
      this.partial = '';
      this.record(line);
      start = newline + 1;
    }
    this.partial += text.slice(start);
    if (this.partial.length > MAX_CSV_LINE_LENGTH + 1) this.tooLong(this.lineNumber + 1);
  }

  end(): void {
    if (this.partial.length > 0) this.record(this.partial);
    this.partial = '';
  }

  private record(raw: string): void {
    const lineNumber = ++this.lineNumber;
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (lineNumber === 1 && line.startsWith('\ufeff')) line = line.slice(1);
    if (line.length > MAX_CSV_LINE_LENGTH) this.tooLong(lineNumber);
    // Blank lines, and the all-empty rows spreadsheets like to append (",,,"), carry nothing.
    if (/^[ \t,]*$/.test(line)) return;
    const serial = firstField(line, `line ${lineNumber}`);
    if (!this.seenRecord) {
      this.seenRecord = true;
      if (/^(serial|deviceSerial)$/i.test(serial)) return; // the optional header
    }
    this.out.add(serial, `line ${lineNumber}`);
  }

  private tooLong(lineNumber: number): never {
    throw new SerialListError(`line ${lineNumber}: longer than ${MAX_CSV_LINE_LENGTH} characters`);
  }
}

/** The first field of a CSV line, unquoted and trimmed. The rest of the line is scanned only to check its quoting. */
function firstField(line: string, where: string): string {
  if (!line.includes('"')) {
    const comma = line.indexOf(',');
    return (comma === -1 ? line : line.slice(0, comma)).trim();
  }
  let first: string | undefined;
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    let value: string;
    if (line[i] === '"') {
      value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) throw new SerialListError(`${where}: unterminated quoted field (a quoted field may not span lines)`);
        value += line.slice(i, q);
        i = q + 1;
        if (line[i] !== '"') break;
        value += '"'; // "" is an escaped quote
        i++;
      }
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (i < line.length && line[i] !== ',') throw new SerialListError(`${where}: unexpected characters after a quoted field`);
    } else {
      const comma = line.indexOf(',', i);
      const end = comma === -1 ? line.length : comma;
      value = line.slice(i, end).trim();
      i = end;
    }
    first ??= value;
    if (i >= line.length) return first;
    i++; // the comma
  }
}

// JSON reader states.
const START = 0; // before '['
const FIRST = 1; // after '[': a string or ']'
const NEXT = 2; // after ',': a string
const AFTER_VALUE = 3; // after a string: ',' or ']'
const DONE = 4; // after ']': only whitespace
const STRING = 5;
const ESCAPE = 6; // after '\'
const UNICODE = 7; // inside \uXXXX

const EXPECTED: Record<number, string> = {
  [START]: "expected '[' (the list must be a JSON array of strings)",
  [FIRST]: "expected a string or ']'",
  [NEXT]: 'expected a string',
  [AFTER_VALUE]: "expected ',' or ']'",
  [DONE]: 'unexpected data after the array',
};

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * A JSON array of strings, by a small state machine (RFC 8259 grammar restricted to that shape). Offsets
 * in messages are byte offsets into the body, counted from the decoded text.
 */
class JsonReader implements Reader {
  private state = START;
  /** Byte offset of the next character. */
  private offset = 0;
  private value = '';
  private valueStart = 0;
  private hex = 0;
  private hexDigits = 0;

  constructor(private readonly out: Batches) {}

  feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      const at = this.offset;
      // UTF-8 length of this UTF-16 unit. The fatal decoder only yields well-formed text, so a low
      // surrogate always follows a high one, which already counted the pair's 4 bytes.
      this.offset += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 4 : c >= 0xdc00 && c <= 0xdfff ? 0 : 3;

      switch (this.state) {
        case STRING:
          if (c === 0x22) {
            this.out.add(this.value, `byte offset ${this.valueStart}`);
            this.state = AFTER_VALUE;
          } else if (c === 0x5c) {
            this.state = ESCAPE;
          } else if (c < 0x20) {
            throw this.error(at, 'control character inside a string');
          } else {
            this.append(text[i]);
          }
          break;
        case ESCAPE:
          if (c === 0x75) {
            this.state = UNICODE;
            this.hex = 0;
            this.hexDigits = 0;
          } else if (Object.hasOwn(SIMPLE_ESCAPES, text[i])) {
            this.append(SIMPLE_ESCAPES[text[i]]);
            this.state = STRING;
          } else {
            throw this.error(at, `invalid escape \\${text[i]}`);
          }
          break;
        case UNICODE: {
          const digit = hexDigit(c);
          if (digit < 0) throw this.error(at, 'invalid \\u escape');
          this.hex = this.hex * 16 + digit;
          if (++this.hexDigits === 4) {
            // A lone surrogate is kept as is: it cannot match the serial pattern anyway.
            this.append(String.fromCharCode(this.hex));
            this.state = STRING;
          }
          break;
        }
        default:
          if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || (c === 0xfeff && at === 0)) break; // whitespace, BOM
          if (c === 0x22 && (this.state === FIRST || this.state === NEXT)) {
            this.state = STRING;
            this.value = '';
            this.valueStart = at;
          } else if (c === 0x5b && this.state === START) {
            this.state = FIRST;
          } else if (c === 0x5d && (this.state === FIRST || this.state === AFTER_VALUE)) {
            this.state = DONE;
          } else if (c === 0x2c && this.state === AFTER_VALUE) {
            this.state = NEXT;
          } else {
            throw this.error(at, `${EXPECTED[this.state]}, found ${JSON.stringify(String.fromCodePoint(text.codePointAt(i)!))}`);
          }
      }
    }
  }

  end(): void {
    if (this.state === DONE) return;
    if (this.state === START) throw this.error(this.offset, 'the body is empty; expected a JSON array of strings');
    if (this.state >= STRING) throw this.error(this.valueStart, 'unterminated string');
    throw this.error(this.offset, "unterminated array (expected ']')");
  }

  /** Serials are at most 64 characters, so a longer string is refused as soon as it gets there. */
  private append(s: string): void {
    this.value += s;
    if (this.value.length > MAX_SERIAL_LENGTH) this.out.add(this.value, `byte offset ${this.valueStart}`);
  }

  private error(offset: number, what: string): SerialListError {
    return new SerialListError(`byte offset ${offset}: ${what}`);
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
