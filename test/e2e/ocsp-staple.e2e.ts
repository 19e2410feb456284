import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { inflateRawSync, crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { handler, OCSP_STAPLE_MAX_RESPONSE_BYTES } from '../../integrations/aws-lambda/src/ocsp-staple';
import { createCaPair } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * Must-show 4 of the AWS deploy kit (docs/aws-deploy.md): the `ocsp-staple` Lambda handler, called in-process as AWS
 * IoT would call it, against the real service's OCSP responder. Its base64 answers are decoded, written to files and
 * verified by `openssl ocsp -respin … -issuer … -CAfile …` for a good and a revoked server certificate (issued under
 * the `server` profile, serverAuth, as a custom domain's certificate is), each ≤ 4 KiB. Then the failures: responder
 * down, HTTP errors, answers over 4 KiB, malformed and oversized requests — each refused with a clear log line.
 */

/** openssl without blocking this process's event loop (the server under test runs in it). */
function opensslAsync(ssl: OpenSslWorkspace, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { cwd: ssl.dir }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ status: code, output: `${stdout}${stderr}` });
    });
  });
}

/** Runs `fn` with these environment variables set (undefined: unset), restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  for (const [name, value] of Object.entries(vars)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  try {
    return await fn();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** The handler's log lines (it writes JSON to stdout/stderr through console) while `fn` runs. */
async function capturingConsole<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: Error; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const original = { log: console.log, error: console.error };
  const capture = (...args: unknown[]) => {
    const text = String(args[0]);
    try {
      lines.push(JSON.parse(text));
    } catch {
      lines.push({ raw: text });
    }
  };
  console.log = capture;
  console.error = capture;
  try {
    return { result: await fn(), lines };
  } catch (error) {
    return { error: error as Error, lines };
  } finally {
    console.log = original.log;
    console.error = original.error;
  }
}

/** A local HTTP server answering every request with `reply`; counts the requests. */
async function fakeResponder(reply: (res: http.ServerResponse) => void): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    req.resume();
    req.on('end', () => reply(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, hits: () => hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const ZIP = path.resolve(__dirname, '../../../dist-lambdas/ocsp-staple.zip');

/** The one entry of a zip written by scripts/build-lambdas.js: its name, DOS date/time and inflated bytes (CRC checked). */
function readSingleEntryZip(zip: Buffer): { name: string; dosTime: number; dosDate: number; data: Buffer } {
  assert.equal(zip.readUInt32LE(0), 0x04034b50, 'a local file header first');
  const method = zip.readUInt16LE(8);
  const [dosTime, dosDate] = [zip.readUInt16LE(10), zip.readUInt16LE(12)];
  const crc = zip.readUInt32LE(14);
  const compressedSize = zip.readUInt32LE(18);
  const nameLength = zip.readUInt16LE(26);
  const extraLength = zip.readUInt16LE(28);
  const name = zip.subarray(30, 30 + nameLength).toString('utf8');
  const start = 30 + nameLength + extraLength;
  const raw = zip.subarray(start, start + compressedSize);
  const data = method === 8 ? inflateRawSync(raw) : Buffer.from(raw);
  assert.equal(crc32(data), crc, 'the CRC of the entry');
  return { name, dosTime, dosDate, data };
}

let seq = 0;
const uniq = (name: string) => `${++seq}-${name}`;

for (const { driver, skip } of drivers()) {
  describe(`ocsp-staple Lambda handler against the OCSP responder on ${driver}`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let caFile: string;
    let chainFile: string;
    const servers: Record<'good' | 'revoked', { id: string; file: string }> = {} as never;

    /** Issues a TLS server certificate (profile `server`) for `host` from the issuing CA. */
    async function issueServer(caId: string, host: string) {
      const csr = ssl.newCsr('ec:P-256', `/CN=${host}`, ['-addext', `subjectAltName=DNS:${host}`]);
      const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId: caId, profile: 'server', csr: csr.csrPem });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return { id: res.body.id as string, file: ssl.file(uniq(`${host}.pem`), res.body.certificatePem), chainPem: res.body.chainPem as string };
    }

    let lastRequestFile = '';
    /** The DER request `openssl ocsp -reqout` writes for the certificate, base64 as AWS IoT hands it to the Lambda. */
    function opensslRequest(certFile: string, extra: string[] = []): string {
      const out = ssl.file(uniq('req.der'));
      const made = ssl.run(['ocsp', '-issuer', caFile, '-cert', certFile, ...extra, '-reqout', out]);
      assert.equal(made.status, 0, made.output);
      lastRequestFile = out;
      return fs.readFileSync(out).toString('base64');
    }

    /** `openssl ocsp -respin` of the handler's answer, verified against the chain; returns the output. */
    async function verifyWithOpenssl(base64: string, certFile: string, extra: string[] = []): Promise<string> {
      const der = Buffer.from(base64, 'base64');
      assert.ok(der.length <= OCSP_STAPLE_MAX_RESPONSE_BYTES, `the answer is ${der.length} bytes, AWS IoT takes at most 4096`);
      const respFile = ssl.file(uniq('resp.der'), der);
      const result = await opensslAsync(ssl, ['ocsp', '-respin', respFile, '-issuer', caFile, '-cert', certFile, '-CAfile', chainFile, '-resp_text', ...extra]);
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /Response verify OK/);
      return result.output;
    }

    const statusOf = (output: string, file: string) => output.split('\n').find((line) => line.startsWith(`${file}: `))?.slice(file.length + 2).trim();

    before(async () => {
      t = await startTestApp(driver);
      const pair = await createCaPair(t);
      caFile = ssl.file('ca.pem', pair.intermediate.certificatePem);
      const good = await issueServer(pair.intermediate.id, 'iot.good.example.com');
      const revoked = await issueServer(pair.intermediate.id, 'iot.revoked.example.com');
      chainFile = ssl.file('chain.pem', good.chainPem);
      servers.good = good;
      servers.revoked = revoked;
      const res = await t.http().post(`/v1/certificates/${revoked.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('staples "good" for a valid server certificate: ≤ 4 KiB, verified by openssl ocsp -respin (nonce echoed)', async () => {
      const request = opensslRequest(servers.good.file);
      const { result, lines } = await capturingConsole(() => withEnv({ FLEET_PKI_URL: t.baseUrl }, () => handler({ ocspRequest: request, messageId: 'm-1' })));
      assert.ok(result && typeof result === 'object', JSON.stringify(lines));
      assert.equal(result.messageId, 'm-1');
      const der = Buffer.from(result.ocspResponse, 'base64');
      console.log(`ocsp-staple good answer: ${der.length} bytes (limit ${OCSP_STAPLE_MAX_RESPONSE_BYTES})`);
      // The certificate's status line (with -cert, openssl makes a request of its own: -no_nonce, or it would expect
      // that request's nonce)...
      const output = await verifyWithOpenssl(result.ocspResponse, servers.good.file, ['-no_nonce']);
      assert.equal(statusOf(output, servers.good.file), 'good');
      assert.match(output, /OCSP Nonce:/);
      // ...and, given the request the handler was called with (-reqin), openssl checks the answer echoes its nonce.
      const respFile = ssl.file(uniq('resp.der'), der);
      const nonce = await opensslAsync(ssl, ['ocsp', '-reqin', lastRequestFile, '-respin', respFile, '-issuer', caFile, '-CAfile', chainFile, '-resp_text']);
      assert.equal(nonce.status, 0, nonce.output);
      assert.match(nonce.output, /Response verify OK/);
      assert.doesNotMatch(nonce.output, /Nonce Verify error|WARNING/);
      assert.match(nonce.output, /Cert Status: good/);
      assert.match(output, /OCSP Response Status: successful/);
      assert.deepEqual(lines.map((line) => line.msg), ['stapled']);
      assert.equal(lines[0].bytes, der.length);
    });

    it('staples "revoked" with reason and time for a revoked server certificate (bare base64 string in, string out)', async () => {
      const request = opensslRequest(servers.revoked.file, ['-no_nonce']);
      const result = await withEnv({ FLEET_PKI_URL: `${t.baseUrl}/` }, () => capturingConsole(() => handler(request)));
      assert.equal(typeof result.result, 'string', JSON.stringify(result.lines));
      const der = Buffer.from(result.result as string, 'base64');
      console.log(`ocsp-staple revoked answer: ${der.length} bytes (limit ${OCSP_STAPLE_MAX_RESPONSE_BYTES})`);
      const output = await verifyWithOpenssl(result.result as string, servers.revoked.file, ['-no_nonce']);
      assert.equal(statusOf(output, servers.revoked.file), 'revoked');
      assert.match(output, /Reason: keyCompromise/);
    });

    it('fails, logging why without the request, when the responder is down (bounded attempts, then a throw)', async () => {
      const down = await fakeResponder(() => undefined);
      const url = down.url;
      await down.close();
      const started = Date.now();
      const { error, lines } = await withEnv({ FLEET_PKI_URL: url, FLEET_PKI_TIMEOUT_MS: '500' }, () => capturingConsole(() => handler(opensslRequest(servers.good.file))));
      assert.ok(error, 'the invocation fails');
      assert.match(error.message, /request failed: ECONNREFUSED/);
      assert.ok(Date.now() - started < 5000, 'bounded: three quick attempts with short backoff');
      const attempts = lines.filter((line) => line.msg === 'attempt failed');
      assert.equal(attempts.length, 3, JSON.stringify(lines));
      assert.equal(lines.at(-1)?.msg, 'no OCSP response to staple');
      assert.equal(lines.at(-1)?.level, 'error');
      for (const line of lines) assert.doesNotMatch(JSON.stringify(line), /ocspRequest|MII|BEGIN/);
    });

    it('gives up within the timeout on a responder that never answers', async () => {
      const hung = await fakeResponder(() => undefined);
      try {
        const started = Date.now();
        const { error, lines } = await withEnv({ FLEET_PKI_URL: hung.url, FLEET_PKI_TIMEOUT_MS: '200', OCSP_STAPLE_ATTEMPTS: '2' }, () => capturingConsole(() => handler(opensslRequest(servers.good.file))));
        assert.match(error?.message ?? '', /no answer within 200 ms/);
        assert.equal(hung.hits(), 2);
        assert.ok(Date.now() - started < 3000);
        assert.equal(lines.filter((line) => line.msg === 'attempt failed').length, 2);
      } finally {
        await hung.close();
      }
    });

    it('retries an HTTP 503, and does not retry a 404', async () => {
      const unavailable = await fakeResponder((res) => res.writeHead(503).end());
      const missing = await fakeResponder((res) => res.writeHead(404).end());
      try {
        const first = await withEnv({ FLEET_PKI_URL: unavailable.url }, () => capturingConsole(() => handler(opensslRequest(servers.good.file))));
        assert.match(first.error?.message ?? '', /HTTP 503/);
        assert.equal(unavailable.hits(), 3);
        const second = await withEnv({ FLEET_PKI_URL: missing.url }, () => capturingConsole(() => handler(opensslRequest(servers.good.file))));
        assert.match(second.error?.message ?? '', /HTTP 404/);
        assert.equal(missing.hits(), 1);
      } finally {
        await unavailable.close();
        await missing.close();
      }
    });

    it('refuses an answer over 4 KiB (never staples a truncated one) and a non-successful OCSP status', async () => {
      const big = Buffer.concat([Buffer.from([0x30, 0x82, 0x10, 0x03, 0x0a, 0x01, 0x00]), Buffer.alloc(0x1000)]);
      const oversized = await fakeResponder((res) => res.writeHead(200, { 'Content-Type': 'application/ocsp-response' }).end(big));
      const tryLater = await fakeResponder((res) => res.writeHead(200, { 'Content-Type': 'application/ocsp-response' }).end(Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03])));
      try {
        const first = await withEnv({ FLEET_PKI_URL: oversized.url }, () => capturingConsole(() => handler(opensslRequest(servers.good.file))));
        assert.match(first.error?.message ?? '', /larger than 4096 bytes/);
        assert.equal(oversized.hits(), 1, 'not retried: the same answer would come back');
        const second = await withEnv({ FLEET_PKI_URL: tryLater.url }, () => capturingConsole(() => handler(opensslRequest(servers.good.file))));
        assert.match(second.error?.message ?? '', /OCSP status tryLater/);
        assert.equal(tryLater.hits(), 3, 'tryLater is worth another attempt');
      } finally {
        await oversized.close();
        await tryLater.close();
      }
    });

    it('refuses malformed and oversized requests before calling the responder', async () => {
      const spy = await fakeResponder((res) => res.writeHead(500).end());
      try {
        const cases: [unknown, RegExp][] = [
          [{}, /carries no base64 OCSP request/],
          [{ ocspRequest: 42 }, /carries no base64 OCSP request/],
          ['', /carries no base64 OCSP request/],
          ['not base64!', /not base64/],
          [Buffer.from('hello, not DER').toString('base64'), /not DER|not a single DER SEQUENCE/],
          [Buffer.from([0x30, 0x05, 0x30, 0x00]).toString('base64'), /not DER|not a single DER SEQUENCE/],
          [Buffer.alloc(9000, 0x30).toString('base64'), /larger than 8192 bytes/],
        ];
        for (const [event, expected] of cases) {
          const { error, lines } = await withEnv({ FLEET_PKI_URL: spy.url }, () => capturingConsole(() => handler(event as never)));
          assert.match(error?.message ?? '', expected, JSON.stringify(event).slice(0, 80));
          assert.equal(lines.at(-1)?.msg, 'refused the request');
        }
        assert.equal(spy.hits(), 0);
      } finally {
        await spy.close();
      }
    });

    it('staples from the bundled dist-lambdas/ocsp-staple.zip as Lambda would load it (index.handler)', { skip: fs.existsSync(ZIP) ? false : 'dist-lambdas/ocsp-staple.zip is absent: run `npm run build:lambdas` first (CI does)' }, async () => {
      const entry = readSingleEntryZip(fs.readFileSync(ZIP));
      assert.equal(entry.name, 'index.js');
      assert.equal(entry.dosDate, ((2020 - 1980) << 9) | (1 << 5) | 1, 'fixed date 2020-01-01: reproducible');
      assert.equal(entry.dosTime, 0);
      assert.doesNotMatch(entry.data.toString('utf8'), /require\("(?!node:|@aws-sdk\/)[^"]+"\)/, 'only node builtins (and the runtime\'s @aws-sdk) are required at run time');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-lambda-'));
      try {
        const file = path.join(dir, 'index.js');
        fs.writeFileSync(file, entry.data);
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const bundled = require(file) as { handler: typeof handler };
        const request = opensslRequest(servers.revoked.file, ['-no_nonce']);
        const { result, lines } = await withEnv({ FLEET_PKI_URL: t.baseUrl }, () => capturingConsole(() => bundled.handler({ ocspRequest: request })));
        assert.ok(result && typeof result === 'object', JSON.stringify(lines));
        const output = await verifyWithOpenssl(result.ocspResponse, servers.revoked.file, ['-no_nonce']);
        assert.equal(statusOf(output, servers.revoked.file), 'revoked');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a configuration without FLEET_PKI_URL, or one with credentials in it', async () => {
      const request = opensslRequest(servers.good.file);
      const unset = await withEnv({ FLEET_PKI_URL: undefined }, () => capturingConsole(() => handler(request)));
      assert.match(unset.error?.message ?? '', /FLEET_PKI_URL is not set/);
      const withCredentials = await withEnv({ FLEET_PKI_URL: 'https://user:hunter2-secret@pki.example.com' }, () => capturingConsole(() => handler(request)));
      assert.match(withCredentials.error?.message ?? '', /must not carry credentials/);
      assert.doesNotMatch(JSON.stringify(withCredentials.lines), /hunter2/);
    });
  });
}
