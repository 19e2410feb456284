import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FUZZ_LONG_RUN, fuzzParameters, hostileText } from '../../test/support/fuzz';
import { DEVICE_SERIAL_PATTERN, readSerials, SerialListError } from './serial-list';

/**
 * Fuzzing of the allow-list reader (text/csv and JSON arrays of strings, docs/fuzzing.md): random and mutated lists,
 * cut into random chunks (a UTF-8 sequence or a quoted field may straddle two). The reader yields only serials that
 * match DEVICE_SERIAL_PATTERN, never more than the limit, or throws a SerialListError (a 400 upstream); each list
 * is read within LIST_BOUND_MS.
 */

const RUNS = 400;
const PROPERTIES = 2;
const LIST_BOUND_MS = 1000;
const LIMITS = { maxSerials: 50, maxBytes: 64 * 1024 };
const TEST_TIMEOUT = FUZZ_LONG_RUN ? Infinity : 60_000;

const serial = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}$/);
const csvCell = fc.oneof(serial, hostileText, serial.map((s) => `"${s}"`), serial.map((s) => `"${s.replace(/./, '""')}"`), fc.constantFrom('serial', '', '"', '""', ',', '\r'));
const csvList = fc.array(fc.array(csvCell, { minLength: 1, maxLength: 3 }).map((cells) => cells.join(',')), { maxLength: 30 }).chain((lines) =>
  fc.constantFrom('\n', '\r\n', '\r').map((eol) => lines.join(eol)),
);
const jsonList = fc.oneof(
  fc.array(fc.oneof(serial, hostileText), { maxLength: 30 }).map((items) => JSON.stringify(items)),
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? ''),
  fc.record({ depth: fc.integer({ min: 1, max: 5000 }), open: fc.constantFrom('[', '{', '["', '[[') }).map(({ depth, open }) => open.repeat(depth)),
);

/** A list, maybe mutated (bytes replaced, cut, BOM, invalid UTF-8), as chunks cut at random byte offsets. */
function chunked(list: fc.Arbitrary<string>): fc.Arbitrary<Buffer[]> {
  return fc
    .record({
      text: list,
      bom: fc.boolean(),
      mutation: fc.option(fc.record({ at: fc.nat(), bytes: fc.uint8Array({ maxLength: 6 }), cut: fc.nat({ max: 8 }) })),
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
    })
    .map(({ text, bom, mutation, cuts }) => {
      let bytes = Buffer.concat([bom ? Buffer.from([0xef, 0xbb, 0xbf]) : Buffer.alloc(0), Buffer.from(text, 'utf8')]);
      if (mutation && bytes.length > 0) {
        const at = mutation.at % bytes.length;
        bytes = Buffer.concat([bytes.subarray(0, at), mutation.bytes, bytes.subarray(at + mutation.cut)]);
      }
      const offsets = [...new Set(cuts.map((c) => (bytes.length ? c % bytes.length : 0)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let from = 0;
      for (const offset of [...offsets, bytes.length]) {
        chunks.push(bytes.subarray(from, offset));
        from = offset;
      }
      return chunks;
    });
}

async function* source(chunks: Buffer[]): AsyncIterable<Buffer> {
  for (const chunk of chunks) yield chunk;
}

async function check(chunks: Buffer[], format: 'csv' | 'json'): Promise<void> {
  const started = performance.now();
  let count = 0;
  try {
    for await (const batch of readSerials(source(chunks), format, LIMITS)) {
      for (const value of batch) assert.match(value, DEVICE_SERIAL_PATTERN);
      count += batch.length;
    }
    assert.ok(count <= LIMITS.maxSerials, `${count} serials over the limit`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    if (!(err instanceof SerialListError)) throw new Error(`readSerials(${format}) threw ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
  }
  const took = performance.now() - started;
  assert.ok(took < LIST_BOUND_MS, `readSerials(${format}) took ${took.toFixed(0)} ms`);
}

describe('fuzzing the allow-list reader', () => {
  it('reads any CSV body as valid serials or refuses it with a SerialListError', { timeout: TEST_TIMEOUT }, async () => {
    await fc.assert(
      fc.asyncProperty(chunked(csvList), (chunks) => check(chunks, 'csv')),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });

  it('reads any JSON body as valid serials or refuses it with a SerialListError', { timeout: TEST_TIMEOUT }, async () => {
    await fc.assert(
      fc.asyncProperty(chunked(jsonList), (chunks) => check(chunks, 'json')),
      fuzzParameters(RUNS, PROPERTIES),
    );
  });
});
