import * as http from 'node:http';
import fc from 'fast-check';
import { CONTROL_CHARS } from '../../src/common/text';

/**
 * Shared pieces of the fuzz suites (docs/fuzzing.md): the run budget and seed, arbitraries for hostile DER, and the
 * rule every HTTP answer must keep.
 *
 * Budget: inside `npm test` each property runs its fixed default number of cases (chosen by measurement so that all
 * fuzz suites together stay under a minute), with a fixed seed unless FUZZ_SEED is given. `npm run fuzz`
 * (scripts/fuzz.js) sets FUZZ_SEED (random, printed), FUZZ_RUNS and FUZZ_MINUTES to run the same properties longer.
 */

const envNumber = (name: string): number | undefined => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, not ${JSON.stringify(raw)}`);
  return value;
};

/** The seed of every property in this process: FUZZ_SEED, or the fixed seed that `npm test` always uses. */
export const FUZZ_SEED = envNumber('FUZZ_SEED') ?? 20_261_206;

/**
 * fast-check parameters for one property. `defaultRuns` is the CI budget; FUZZ_RUNS replaces it. FUZZ_MINUTES gives
 * each file that many minutes, shared among its `propertiesInFile` properties (a property stops at its share of the
 * time, whichever of runs and time comes first). FUZZ_PATH replays one counterexample path fast-check printed.
 */
export function fuzzParameters<T>(defaultRuns: number, propertiesInFile = 1): fc.Parameters<T> {
  const minutes = envNumber('FUZZ_MINUTES');
  const runs = envNumber('FUZZ_RUNS') ?? (minutes ? 1_000_000_000 : defaultRuns);
  const parameters: fc.Parameters<T> = { seed: FUZZ_SEED, numRuns: Math.max(1, Math.floor(runs)), endOnFailure: true };
  if (minutes) parameters.interruptAfterTimeLimit = Math.max(1000, Math.floor((minutes * 60_000) / propertiesInFile));
  if (process.env.FUZZ_PATH) parameters.path = process.env.FUZZ_PATH;
  return parameters;
}

/** Whether a longer run was asked for (then the node:test timeouts must not cut it short). */
export const FUZZ_LONG_RUN = envNumber('FUZZ_MINUTES') !== undefined || envNumber('FUZZ_RUNS') !== undefined;

/** A DER header claiming `length` bytes of content (long form, 1 to 4 length bytes). */
export function derHeader(tag: number, length: number): Buffer {
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

/**
 * Hostile DER: random bytes; SEQUENCEs nested hundreds deep; headers claiming up to 4 GiB (or using 5 to 8 length
 * bytes, or the indefinite form DER forbids); and mutations of real, valid `seeds` (a byte changed, a bit flipped,
 * cut short, bytes inserted or removed, a length rewritten, a slice repeated), which get past the first checks and
 * reach the deeper parsing code.
 */
export function hostileDer(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const random = fc.uint8Array({ maxLength: 600 }).map((bytes) => Buffer.from(bytes));
  const nested = fc
    .record({ depth: fc.integer({ min: 1, max: 3000 }), tag: fc.constantFrom(0x30, 0x31, 0xa0, 0xa3, 0x04), definite: fc.boolean(), tail: fc.uint8Array({ maxLength: 8 }) })
    .map(({ depth, tag, definite, tail }) => {
      let inner = Buffer.from(tail);
      if (!definite) return Buffer.concat([Buffer.alloc(depth * 2, Buffer.from([tag, 0x80])), inner]);
      for (let i = 0; i < depth; i++) inner = Buffer.concat([derHeader(tag, inner.length), inner]);
      return inner;
    });
  const hugeLength = fc
    .record({ tag: fc.integer({ min: 0, max: 255 }), count: fc.integer({ min: 1, max: 8 }), fill: fc.constantFrom(0xff, 0x7f, 0x80, 0x00), tail: fc.uint8Array({ maxLength: 40 }) })
    .map(({ tag, count, fill, tail }) => Buffer.concat([Buffer.from([tag, 0x80 | count]), Buffer.alloc(count, fill), Buffer.from(tail)]));
  const arbitraries: fc.Arbitrary<Buffer>[] = [random, nested, hugeLength];
  if (seeds.length > 0) arbitraries.push(mutated(seeds), mutated(seeds), mutated(seeds));
  return fc.oneof(...arbitraries);
}

function mutated(seeds: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const mutation = fc.record({
    kind: fc.constantFrom('set', 'flip', 'truncate', 'insert', 'delete', 'length', 'repeat'),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
    span: fc.integer({ min: 1, max: 64 }),
  });
  return fc.record({ seed: fc.constantFrom(...seeds), mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }) }).map(({ seed, mutations }) => {
    let der = Buffer.from(seed);
    for (const m of mutations) {
      if (der.length === 0) break;
      const at = m.at % der.length;
      switch (m.kind) {
        case 'set':
          der[at] = m.value;
          break;
        case 'flip':
          der[at] ^= 1 << (m.value % 8);
          break;
        case 'truncate':
          der = der.subarray(0, at);
          break;
        case 'insert':
          der = Buffer.concat([der.subarray(0, at), m.bytes, der.subarray(at)]);
          break;
        case 'delete':
          der = Buffer.concat([der.subarray(0, at), der.subarray(at + m.span)]);
          break;
        case 'length':
          // A length byte rewritten in the long form: claims far more (or less) than follows.
          der = Buffer.concat([der.subarray(0, at), Buffer.from([0x80 | ((m.value % 8) + 1)]), Buffer.from(m.bytes.subarray(0, (m.value % 8) + 1)), der.subarray(at + 1)]);
          break;
        case 'repeat':
          der = Buffer.concat([der.subarray(0, at), der.subarray(at, at + m.span), der.subarray(at)]);
          break;
      }
    }
    return Buffer.from(der);
  });
}

/** Strings a client might put anywhere: any unicode (lone surrogates, NUL, RTL marks), long runs, and the usual suspects. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '\u202e', '__proto__', 'constructor', "' OR 1=1 --", '../../etc/passwd', '%00', '{serial}', '${7*7}', 'null', 'NaN'),
  fc.record({ char: fc.constantFrom('a', '\u00e9', '\ud83d\udca9', '\u0000', '['), count: fc.integer({ min: 100, max: 70_000 }) }).map(({ char, count }) => char.repeat(count)),
);

/** Why an HTTP answer breaks the fuzzing rules (docs/fuzzing.md), or undefined when it keeps them. */
export function answerProblem(what: string, status: number, contentType: string | undefined, text: string): string | undefined {
  const type = contentType ?? '';
  if (status >= 500) return `${what}: ${status} ${text.slice(0, 200)}`;
  if (what.includes(' /ocsp') && (what.startsWith('GET') || what.startsWith('POST')) && status === 200) {
    return type === 'application/ocsp-response' ? undefined : `${what}: OCSP answered ${type}`;
  }
  if (status < 400) return undefined;
  // EST answers its errors as one line of text, "<CODE>: <detail>" (RFC 7030 §4.2.3, docs/est.md).
  if (what.includes(' /.well-known/est/')) {
    return type.startsWith('text/plain') && /^[A-Z][A-Z0-9_]+: .*\n$/.test(text) && !CONTROL_CHARS.test(text.slice(0, -1))
      ? undefined
      : `${what}: ${status} as ${type || 'no content type'}, not an EST text error: ${JSON.stringify(text.slice(0, 200))}`;
  }
  if (!type.startsWith('application/problem+json')) return `${what}: ${status} as ${type || 'no content type'}: ${text.slice(0, 200)}`;
  try {
    const body = JSON.parse(text) as { code?: unknown; status?: unknown };
    if (typeof body.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(body.code) || body.status !== status) return `${what}: ${status} with a bad problem ${text.slice(0, 200)}`;
  } catch {
    return `${what}: ${status} problem that is not JSON: ${text.slice(0, 200)}`;
  }
  return undefined;
}

// ---- HTTP: one request, answered within its bound ----------------------------------------------------------------

export const REQUEST_BOUND_MS = 2000;
/**
 * Requests that make a CA key (create or rotate an authority) may take longer: RSA-4096 key generation alone takes
 * seconds on a small machine (found by this fuzzer, kept in test/fuzz/corpus/http.json). It runs off the event loop
 * (src/keys/local), so other requests are still answered in REQUEST_BOUND_MS meanwhile (test/e2e/fuzz-regressions.e2e.ts).
 */
export const KEY_GENERATION_BOUND_MS = 20_000;
export const makesCaKey = (method: string, path: string) => method === 'POST' && /^\/v1\/authorities(\/[^/]+\/rotate)?$/.test(path);
export interface Sent {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

interface Answer {
  status: number;
  contentType: string | undefined;
  text: string;
  ms: number;
}

/** Sends one request on a fresh connection; fails the property if no answer arrives within REQUEST_BOUND_MS. */
export function sendWithinBound(baseUrl: string, request: Sent): Promise<Answer> {
  const bound = makesCaKey(request.method, request.path) ? KEY_GENERATION_BOUND_MS : REQUEST_BOUND_MS;
  const url = new URL(baseUrl);
  const headers: Record<string, string> = { ...request.headers };
  if (request.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(request.body));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname: url.hostname, port: url.port, method: request.method, path: request.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.setTimeout(bound, () => req.destroy(new Error(`no answer within ${bound} ms`)));
    req.on('error', reject);
    req.end(request.body);
  });
}

/** A short description of a request for a failure message (bodies cut). */
export function describeRequest(request: Sent): string {
  const body = request.body === undefined ? '' : ` ${JSON.stringify((Buffer.isBuffer(request.body) ? request.body.toString('base64') : request.body).slice(0, 300))}`;
  return `${request.method} ${request.path.slice(0, 200)}${body}`;
}

