import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonArrayStreamError, jsonArrayElements } from './json-array-stream';

async function read(chunks: string[], maxElementBytes = 1000): Promise<string[]> {
  const out: string[] = [];
  async function* source() {
    for (const chunk of chunks) yield Buffer.from(chunk);
  }
  for await (const element of jsonArrayElements(source(), { maxElementBytes })) out.push(element.text);
  return out;
}

describe('streamed JSON array elements', () => {
  it('yields each element of an array, whatever the chunking', async () => {
    const text = ' [ {"a":"x,]}\\"[","b":[1,2,{"c":3}]} , 42, "s,t" ,null,[[]] ]\n';
    const expected = (JSON.parse(text) as unknown[]).map((v) => JSON.stringify(v));
    for (let size = 1; size <= text.length; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      const elements = await read(chunks);
      assert.deepEqual(elements.map((e) => JSON.stringify(JSON.parse(e))), expected, `chunks of ${size}`);
    }
  });

  it('counts elements without building their text when asked to', async () => {
    async function* source() {
      yield Buffer.from('[{"a":[1,2]}, "x", 3');
      yield Buffer.from(', null]');
    }
    const seen: string[] = [];
    for await (const element of jsonArrayElements(source(), { maxElementBytes: 100, countOnly: true })) seen.push(element.text);
    assert.deepEqual(seen, ['', '', '', '']);
  });

  it('reads an empty array', async () => {
    assert.deepEqual(await read(['[', ' ]']), []);
  });

  for (const [what, text] of [
    ['an object document', '{"a":1}'],
    ['an empty document', '  '],
    ['an unclosed array', '[{"a":1},'],
    ['a trailing comma', '[1,]'],
    ['an empty element', '[1,,2]'],
    ['text after the array', '[1] x'],
    ['two elements without a comma', '[{"a":1} {"b":2}]'],
  ] as const) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(read([text]), JsonArrayStreamError);
    });
  }

  it('refuses an element larger than the bound, without reading the rest', async () => {
    await assert.rejects(read(['[', `"${'x'.repeat(2000)}"`, ']']), /larger than 1000 bytes/);
  });
});
