import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICE_SERIAL_PATTERN, readSerials, SerialListError } from './serial-list';

const LIMITS = { maxSerials: 1_000_000, maxBytes: 64 * 1024 * 1024 };

async function* chunks(...parts: (Buffer | string)[]): AsyncGenerator<Buffer | string> {
  for (const part of parts) yield part;
}

/** Splits a body into chunks of `size` bytes. */
function sliced(body: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) out.push(body.subarray(i, i + size));
  return out;
}

async function readAll(
  source: AsyncIterable<Buffer | string> | string | Buffer,
  format: 'csv' | 'json',
  limits = LIMITS,
): Promise<{ serials: string[]; batchSizes: number[] }> {
  const input = typeof source === 'string' || Buffer.isBuffer(source) ? chunks(source) : source;
  const serials: string[] = [];
  const batchSizes: number[] = [];
  for await (const batch of readSerials(input, format, limits)) {
    batchSizes.push(batch.length);
    serials.push(...batch);
  }
  return { serials, batchSizes };
}

const read = async (body: string | Buffer, format: 'csv' | 'json', limits = LIMITS) => (await readAll(body, format, limits)).serials;

type Body = string | Buffer | AsyncIterable<Buffer | string>;

async function expectError(body: Body, format: 'csv' | 'json', message: RegExp, limits = LIMITS): Promise<void> {
  await assert.rejects(readAll(body, format, limits), (err: unknown) => {
    assert.ok(err instanceof SerialListError, `expected a SerialListError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

/** The outcome of reading, as a comparable value: the serials, or the error message. */
async function outcome(source: AsyncIterable<Buffer | string>, format: 'csv' | 'json'): Promise<string[] | string> {
  try {
    return (await readAll(source, format)).serials;
  } catch (err) {
    assert.ok(err instanceof SerialListError, String(err));
    return err.message;
  }
}

/** Feeds `body` split at every byte (in two) and one byte at a time; every way must give the same outcome. */
async function assertSplitInvariant(body: Buffer, format: 'csv' | 'json'): Promise<string[] | string> {
  const whole = await outcome(chunks(body), format);
  for (let i = 1; i < body.length; i++) {
    assert.deepEqual(await outcome(chunks(body.subarray(0, i), body.subarray(i)), format), whole, `split at byte ${i}`);
  }
  assert.deepEqual(await outcome(chunks(...sliced(body, 1)), format), whole, 'one byte at a time');
  assert.deepEqual(await outcome(chunks(Buffer.alloc(0), ...sliced(body, 3), Buffer.alloc(0)), format), whole, 'three bytes at a time');
  return whole;
}

describe('DEVICE_SERIAL_PATTERN', () => {
  it('accepts 1-64 characters from the allowed set, starting with a letter or digit', () => {
    for (const ok of ['A', '0', 'SN-0001', 'dev_01.a:b/c-d', 'a'.repeat(64)]) assert.ok(DEVICE_SERIAL_PATTERN.test(ok), ok);
    for (const bad of ['', '-A1', '.A1', 'a'.repeat(65), 'A 1', 'A"1', 'Ä1', 'A1\n', 'A,1']) assert.ok(!DEVICE_SERIAL_PATTERN.test(bad), bad);
  });
});

describe('readSerials (csv)', () => {
  it('reads one serial per line, LF or CRLF, with or without a final newline', async () => {
    assert.deepEqual(await read('A1\nA2\nA3\n', 'csv'), ['A1', 'A2', 'A3']);
    assert.deepEqual(await read('A1\r\nA2\r\nA3', 'csv'), ['A1', 'A2', 'A3']);
    assert.deepEqual(await read('A1\nA2\r\n', 'csv'), ['A1', 'A2']);
    assert.deepEqual(await read('', 'csv'), []);
  });

  it('takes the first field and ignores the other columns', async () => {
    assert.deepEqual(await read('SN-1,model-x,2024-01-01\nSN-2,,\nSN-3', 'csv'), ['SN-1', 'SN-2', 'SN-3']);
  });

  it('skips an optional header line (serial or deviceSerial, any case), only as the first record', async () => {
    assert.deepEqual(await read('serial\nA1\n', 'csv'), ['A1']);
    assert.deepEqual(await read('deviceSerial,model\r\nA1,x\r\n', 'csv'), ['A1']);
    assert.deepEqual(await read('\n\nDEVICESERIAL\nA1\n', 'csv'), ['A1']);
    assert.deepEqual(await read('"Serial",model\nA1,x\n', 'csv'), ['A1']);
    assert.deepEqual(await read(' Serial ,model\nA1,x\n', 'csv'), ['A1']);
    // A later line spelled like a header is an ordinary (valid) serial.
    assert.deepEqual(await read('A1\nserial\n', 'csv'), ['A1', 'serial']);
    // Other names are not a header; they are checked like any serial.
    await expectError('device serial\nA1\n', 'csv', /^line 1: invalid device serial "device serial"/);
  });

  it('skips blank lines and rows of empty fields', async () => {
    assert.deepEqual(await read('\nA1\n\n  \r\n\t\nA2\n,,,\n\n', 'csv'), ['A1', 'A2']);
  });

  it('trims spaces and tabs around fields', async () => {
    assert.deepEqual(await read('  A1  ,x\n\tA2\t\n "A3" , "y"\n', 'csv'), ['A1', 'A2', 'A3']);
  });

  it('reads double-quoted fields with "" escapes and commas inside', async () => {
    assert.deepEqual(await read('"A1","a, ""quoted"" note"\n"A2",x\n', 'csv'), ['A1', 'A2']);
    assert.deepEqual(await read('A3,"x,y",z\n', 'csv'), ['A3']);
    await expectError('"A""1",x\n', 'csv', /^line 1: invalid device serial "A\\"1"/);
    await expectError('"",x\n', 'csv', /^line 1: invalid device serial ""/);
  });

  it('refuses a quoted field that spans lines, rather than reading its second line as a record', async () => {
    await expectError('A1,"note\nB2,more"\n', 'csv', /^line 1: unterminated quoted field/);
    await expectError('A0\n"A1\nB2"\n', 'csv', /^line 2: unterminated quoted field/);
  });

  it('refuses characters after a closing quote', async () => {
    await expectError('"A1"x,y\n', 'csv', /^line 1: unexpected characters after a quoted field/);
    await expectError('A1,"x" y\n', 'csv', /^line 1: unexpected characters after a quoted field/);
  });

  it('names the line and the bad value, truncated to 64 characters', async () => {
    await expectError('A1\n\nA2\nbad serial\n', 'csv', /^line 4: invalid device serial "bad serial"/);
    await expectError('A1\r\n-A2\r\n', 'csv', /^line 2: invalid device serial "-A2"/);
    await expectError(',x\n', 'csv', /^line 1: invalid device serial ""/);
    const long = `X${'y'.repeat(99)}`;
    await expectError(`A1\n${long}\n`, 'csv', new RegExp(`^line 2: invalid device serial "${long.slice(0, 64)}…" \\(`));
    // Quoted so control characters cannot forge log lines.
    await expectError('A\u001b[31m1\n', 'csv', /^line 1: invalid device serial "A\\u001b\[31m1"/);
  });

  it('refuses a line longer than 4096 characters, even before it ends', async () => {
    assert.deepEqual(await read(`A1,${'x'.repeat(4093)}\n`, 'csv'), ['A1']);
    await expectError(`A1,${'x'.repeat(4094)}\n`, 'csv', /^line 1: longer than 4096/);
    // A newline never comes: refused as soon as the line is too long, without reading on.
    async function* endless(): AsyncGenerator<string> {
      yield 'A1\nA2,';
      for (;;) yield 'x'.repeat(1000);
    }
    await expectError(endless(), 'csv', /^line 2: longer than 4096/);
  });

  it('skips a UTF-8 byte order mark', async () => {
    assert.deepEqual(await read('\ufeffserial\nA1\n', 'csv'), ['A1']);
    assert.deepEqual(await read(Buffer.from('\ufeffA1\n'), 'csv'), ['A1']);
  });

  it('accepts non-ASCII text in other columns and refuses invalid UTF-8', async () => {
    assert.deepEqual(await read('A1,Müller 😀\n', 'csv'), ['A1']);
    await expectError(Buffer.from([0x41, 0x31, 0x2c, 0xff, 0x0a]), 'csv', /not valid UTF-8/);
    await expectError(Buffer.from([0x41, 0x31, 0x2c, 0xe2, 0x82]), 'csv', /not valid UTF-8/); // truncated at the end
  });
});

describe('readSerials (json)', () => {
  it('reads a top-level array of strings, with any JSON whitespace', async () => {
    assert.deepEqual(await read('["A1","A2","A3"]', 'json'), ['A1', 'A2', 'A3']);
    assert.deepEqual(await read(' \r\n\t[ "A1" ,\n  "A2"\t]\n ', 'json'), ['A1', 'A2']);
    assert.deepEqual(await read('[]', 'json'), []);
    assert.deepEqual(await read('\ufeff["A1"]', 'json'), ['A1']);
  });

  it('decodes string escapes, including \\uXXXX', async () => {
    assert.deepEqual(await read('["\\u0041\\u0031", "a\\/b", "x\\u002Dy\\u002dz"]', 'json'), ['A1', 'a/b', 'x-y-z']);
    await expectError('["A\\n1"]', 'json', /^byte offset 1: invalid device serial "A\\n1"/);
    await expectError('["A\\u00e91"]', 'json', /^byte offset 1: invalid device serial "Aé1"/);
    await expectError('["A\\ud83d1"]', 'json', /^byte offset 1: invalid device serial "A\\ud83d1"/);
  });

  it('refuses everything but an array of strings', async () => {
    const cases: [string, RegExp][] = [
      ['', /^byte offset 0: the body is empty/],
      ['   ', /^byte offset 3: the body is empty/],
      ['"A1"', /^byte offset 0: expected '\['/],
      ['{"serials":["A1"]}', /^byte offset 0: expected '\['/],
      ['["A1",2]', /^byte offset 6: expected a string, found "2"/],
      ['[1]', /^byte offset 1: expected a string or '\]', found "1"/],
      ['["A1",["A2"]]', /^byte offset 6: expected a string/],
      ['[{"a":"A1"}]', /^byte offset 1: expected a string or '\]'/],
      ['["A1",null]', /^byte offset 6: expected a string/],
      ['["A1" "A2"]', /^byte offset 6: expected ',' or '\]'/],
      ['["A1",]', /^byte offset 6: expected a string, found "\]"/],
      ['[,"A1"]', /^byte offset 1: expected a string or '\]'/],
      ['["A1"]x', /^byte offset 6: unexpected data after the array, found "x"/],
      ['["A1"][]', /^byte offset 6: unexpected data after the array/],
      ['["A1"', /^byte offset 5: unterminated array/],
      ['["A1",', /^byte offset 6: unterminated array/],
      ['["A1", "A2', /^byte offset 7: unterminated string/],
      ['["A1\\', /^byte offset 1: unterminated string/],
      ['["A\\x41"]', /^byte offset 4: invalid escape \\x/],
      ['["A\\u00G1"]', /^byte offset 7: invalid \\u escape/],
      ['["A\t1"]', /^byte offset 3: control character inside a string/],
      ["['A1']", /^byte offset 1: expected a string or '\]', found "'"/],
      ['[\u00a0"A1"]', /^byte offset 1: expected a string or '\]', found "\u00a0"/],
    ];
    for (const [body, message] of cases) await expectError(body, 'json', message);
  });

  it('names the byte offset of a bad serial, counting multi-byte characters as bytes', async () => {
    await expectError('["A1", "b c"]', 'json', /^byte offset 7: invalid device serial "b c"/);
    await expectError('["A1",\n"é",\n"😀"]', 'json', /^byte offset 7: invalid device serial "é"/);
    // é is 2 bytes, € 3, 😀 4 (one character, two UTF-16 units), the BOM 3.
    await expectError('["é\t"]', 'json', /^byte offset 4: control character/);
    await expectError('["€\t"]', 'json', /^byte offset 5: control character/);
    await expectError('["😀\t"]', 'json', /^byte offset 6: control character/);
    await expectError('\ufeff["A1", 3]', 'json', /^byte offset 10: expected a string, found "3"/);
    await expectError('["A1","A2", "ä😀x"]', 'json', /^byte offset 12: invalid device serial "ä😀x"/);
    await expectError('["A1"]  😀', 'json', /^byte offset 8: unexpected data after the array, found "😀"/);
    await expectError('[ "😀" , 3]', 'json', /^byte offset 2: invalid device serial "😀"/);
  });

  it('refuses a string longer than 64 characters as soon as it gets there, quoting 64 of them', async () => {
    await expectError(`["A1","${'Z'.repeat(1000)}`, 'json', new RegExp(`^byte offset 6: invalid device serial "${'Z'.repeat(64)}…"`));
    assert.deepEqual(await read(`["${'Z'.repeat(64)}"]`, 'json'), ['Z'.repeat(64)]);
  });

  it('refuses invalid UTF-8', async () => {
    await expectError(Buffer.from([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d]), 'json', /not valid UTF-8/);
  });
});

describe('readSerials limits and batching', () => {
  it('yields batches of up to 1000', async () => {
    const body = Array.from({ length: 2500 }, (_, i) => `SN-${i}`).join('\n');
    const { serials, batchSizes } = await readAll(chunks(...sliced(Buffer.from(body), 777)), 'csv');
    assert.equal(serials.length, 2500);
    assert.equal(serials[2499], 'SN-2499');
    assert.deepEqual(batchSizes, [1000, 1000, 500]);
    const json = await readAll(JSON.stringify(Array.from({ length: 2000 }, (_, i) => `SN-${i}`)), 'json');
    assert.deepEqual(json.batchSizes, [1000, 1000]);
  });

  it('yields a batch before the rest of the body has arrived', async () => {
    let served = 0;
    async function* slow(): AsyncGenerator<string> {
      for (let i = 0; i < 1500; i++) {
        served++;
        yield `SN-${i}\n`;
      }
    }
    const iterator = readSerials(slow(), 'csv', LIMITS)[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    assert.equal((first.value as string[]).length, 1000);
    assert.ok(served < 1500, `served ${served}`);
    await iterator.return(undefined);
  });

  it('enforces maxSerials in both formats', async () => {
    const limits = { maxSerials: 3, maxBytes: 1000 };
    assert.deepEqual(await read('serial\nA1\nA2\nA3\n', 'csv', limits), ['A1', 'A2', 'A3']);
    await expectError('A1\nA2\nA3\nA4\n', 'csv', /^line 4: the list has more than 3 serials/, limits);
    assert.deepEqual(await read('["A1","A2","A3"]', 'json', limits), ['A1', 'A2', 'A3']);
    await expectError('["A1","A2","A3","A4"]', 'json', /^byte offset 16: the list has more than 3 serials/, limits);
  });

  it('enforces maxBytes, counting bytes (not characters) and without reading on', async () => {
    const body = 'A1,é\nA2\n'; // 9 bytes, 8 characters
    assert.deepEqual(await read(body, 'csv', { maxSerials: 10, maxBytes: 9 }), ['A1', 'A2']);
    await expectError(body, 'csv', /larger than 8 bytes/, { maxSerials: 10, maxBytes: 8 });
    await expectError(Buffer.from('["A1","A2"]'), 'json', /larger than 10 bytes/, { maxSerials: 10, maxBytes: 10 });
    async function* endless(): AsyncGenerator<string> {
      yield '[';
      for (;;) yield '"A1",';
    }
    await expectError(chunks('['), 'json', /unterminated/, { maxSerials: 10, maxBytes: 100 });
    await expectError(endless(), 'json', /larger than 100 bytes/, { maxSerials: 1e9, maxBytes: 100 });
  });

  it('accepts string chunks as well as buffers', async () => {
    assert.deepEqual((await readAll(chunks('["A', Buffer.from('1","A'), '2"]'), 'json')).serials, ['A1', 'A2']);
    assert.deepEqual((await readAll(chunks('A1\r', Buffer.from('\nA'), '2'), 'csv')).serials, ['A1', 'A2']);
  });
});

describe('readSerials chunk boundaries', () => {
  it('csv: the same result wherever the body is split (CRLF, quotes, multi-byte characters)', async () => {
    const body = Buffer.from('\ufeffDeviceSerial,owner\r\n"SN-1","Müller, ""Jö"""\r\n\r\n  SN-2 ,😀\r\nSN-3\n"SN-4"');
    assert.deepEqual(await assertSplitInvariant(body, 'csv'), ['SN-1', 'SN-2', 'SN-3', 'SN-4']);
  });

  it('csv: the same error wherever the body is split', async () => {
    assert.equal(
      await assertSplitInvariant(Buffer.from('SN-1,é\r\nSN 2,😀\r\n'), 'csv'),
      'line 2: invalid device serial "SN 2" (1-64 characters: letters, digits and . _ : / -, starting with a letter or digit)',
    );
    assert.match(String(await assertSplitInvariant(Buffer.from('SN-1\r\n"SN-2,x\r\nSN-3'), 'csv')), /^line 2: unterminated/);
  });

  it('json: the same result wherever the body is split (escapes, \\uXXXX, whitespace)', async () => {
    const body = Buffer.from('\ufeff [\r\n "SN-1",\t"S\\u004e-\\u0032" , "a\\/b:c.d_e"\r\n]\r\n');
    assert.deepEqual(await assertSplitInvariant(body, 'json'), ['SN-1', 'SN-2', 'a/b:c.d_e']);
  });

  it('json: the same error and byte offset wherever the body is split', async () => {
    assert.equal(
      await assertSplitInvariant(Buffer.from('["SN-1", "é😀\\u0041"]'), 'json'),
      'byte offset 9: invalid device serial "é😀A" (1-64 characters: letters, digits and . _ : / -, starting with a letter or digit)',
    );
    assert.equal(await assertSplitInvariant(Buffer.from('["SN-1"] 😀'), 'json'), 'byte offset 9: unexpected data after the array, found "😀"');
  });

  it('invalid UTF-8 is refused wherever the body is split, including inside the bad sequence', async () => {
    const body = Buffer.from([0x5b, 0x22, 0x41, 0xf0, 0x9f, 0x98, 0x22, 0x5d]); // ["A + a truncated 4-byte sequence + "]
    for (let i = 0; i < body.length; i++) {
      for (const format of ['json', 'csv'] as const) {
        await expectError(chunks(body.subarray(0, i), body.subarray(i)), format, /not valid UTF-8/);
      }
    }
  });
});

describe('readSerials volume', () => {
  const serials = Array.from({ length: 100_000 }, (_, i) => `SN-${String(i).padStart(8, '0')}:rev.A/1`);

  it('reads 100,000 serials from CSV', async () => {
    const body = Buffer.from(`serial,model\r\n${serials.map((s) => `${s},sensor-v2`).join('\r\n')}\r\n`);
    const { serials: read, batchSizes } = await readAll(chunks(...sliced(body, 64 * 1024)), 'csv');
    assert.equal(read.length, 100_000);
    assert.equal(batchSizes.length, 100);
    assert.equal(read[99_999], serials[99_999]);
  });

  it('reads 100,000 serials from JSON', async () => {
    const body = Buffer.from(JSON.stringify(serials, null, 1));
    const { serials: read, batchSizes } = await readAll(chunks(...sliced(body, 64 * 1024)), 'json');
    assert.equal(read.length, 100_000);
    assert.equal(batchSizes.length, 100);
    assert.equal(read[99_999], serials[99_999]);
  });
});

describe('readSerials and the event loop', () => {
  it('gives the event loop turns while parsing a large body that arrives as one chunk', async () => {
    const body = Buffer.from(JSON.stringify(Array.from({ length: 500_000 }, (_, i) => `SN-${String(i).padStart(8, '0')}`)));
    // The longest stretch without a turn of the event loop, as seen by a 1 ms timer.
    const measure = async () => {
      let longestGap = 0;
      let last = performance.now();
      let turns = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        longestGap = Math.max(longestGap, now - last);
        last = now;
        turns++;
      }, 1);
      let count = 0;
      const started = performance.now();
      try {
        for await (const batch of readSerials(chunks(body), 'json', LIMITS)) count += batch.length;
      } finally {
        clearInterval(timer);
      }
      return { count, turns, longestGap, elapsed: performance.now() - started };
    };
    // Slices are 10 ms. On a loaded machine a garbage collection or the scheduler can stall one run past the bound;
    // parsing without slices would miss it on every run, so the best of three is judged.
    const runs = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const run = await measure();
      assert.equal(run.count, 500_000);
      runs.push(run);
      if (run.turns >= 5 && run.longestGap < 60) break;
    }
    const best = runs.reduce((a, b) => (b.longestGap < a.longestGap ? b : a));
    assert.ok(best.turns >= 5, `the timer ran ${best.turns} times during ${best.elapsed.toFixed(0)} ms of parsing`);
    assert.ok(best.longestGap < 60, `the event loop waited ${runs.map((r) => r.longestGap.toFixed(0)).join(', ')} ms for a turn`);
  });
});
