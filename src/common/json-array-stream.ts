/**
 * Reads the elements of one top-level JSON array from a byte stream, one at a time, without holding the whole
 * document: each element's text is yielded (for JSON.parse) as soon as it is complete, so memory stays bounded by
 * the largest element (`maxElementBytes`), whatever the array's length. Only the structure is checked here (brackets,
 * strings, commas); the element's own JSON is left to JSON.parse. Structural characters are ASCII, so scanning bytes
 * is safe for UTF-8 input.
 */
export class JsonArrayStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonArrayStreamError';
  }
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

export interface JsonArrayElement {
  index: number;
  text: string;
}

/**
 * `countOnly`: the elements are checked and counted but their text is not built (`text` is ''), so a pass that only
 * validates the structure allocates nothing per element.
 */
export async function* jsonArrayElements(source: AsyncIterable<Buffer | string>, options: { maxElementBytes: number; countOnly?: boolean }): AsyncGenerator<JsonArrayElement> {
  const countOnly = options.countOnly === true;
  let state = 'before' as 'before' | 'between' | 'element' | 'after';
  let depth = 0;
  let inString = false;
  let escaped = false;
  /** The element is an object or array that has closed: only whitespace, "," or "]" may follow. */
  let closed = false;
  let expectElement = true;
  let index = 0;
  let parts: Buffer[] = [];
  let size = 0;
  let offset = 0;
  const fail = (message: string): never => {
    throw new JsonArrayStreamError(`${message} (at byte ${offset})`);
  };
  for await (const raw of source) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    // Where the current element's bytes start in this chunk (an element in progress goes on from its first byte).
    let start = state === 'element' ? 0 : -1;
    const keep = (end: number) => {
      if (start < 0) return;
      size += end - start;
      if (size > options.maxElementBytes) fail(`element ${index} is larger than ${options.maxElementBytes} bytes`);
      if (!countOnly) parts.push(chunk.subarray(start, end));
      start = -1;
    };
    for (let i = 0; i < chunk.length; i++, offset++) {
      const c = chunk[i];
      if (state === 'element') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) inString = false;
          continue;
        }
        if (closed && !WHITESPACE.has(c) && c !== 0x2c && c !== 0x5d) fail('expected "," or "]" after an element');
        if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth++;
        else if (c === 0x7d || c === 0x5d) {
          if (depth === 0) {
            // The array's closing bracket right after a scalar element.
            if (c !== 0x5d) fail('unbalanced "}"');
            keep(i);
            yield { index: index++, text: countOnly ? '' : Buffer.concat(parts).toString('utf8') };
            parts = [];
            size = 0;
            state = 'after';
            continue;
          }
          depth--;
          if (depth === 0) closed = true;
        } else if (c === 0x2c && depth === 0) {
          keep(i);
          yield { index: index++, text: countOnly ? '' : Buffer.concat(parts).toString('utf8') };
          parts = [];
          size = 0;
          state = 'between';
          expectElement = true;
        }
        continue;
      }
      if (WHITESPACE.has(c)) continue;
      if (state === 'before') {
        if (c !== 0x5b) fail('the document must be a JSON array');
        state = 'between';
        expectElement = true;
        continue;
      }
      if (state === 'after') fail('text after the end of the array');
      // between elements
      if (c === 0x5d) {
        if (index > 0 && expectElement) fail('a comma before "]"');
        state = 'after';
        continue;
      }
      if (!expectElement) fail('expected "," or "]"');
      if (c === 0x2c) fail('an empty element');
      // The element starts here: this byte is read again, in the element state.
      state = 'element';
      depth = 0;
      inString = false;
      escaped = false;
      closed = false;
      expectElement = false;
      start = i;
      i--;
      offset--;
    }
    if (state === 'element') keep(chunk.length);
  }
  if (state !== 'after') fail(state === 'before' ? 'the document is empty' : 'the array is not closed');
}
