import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
// The module object itself (not an import namespace copy), so that the test can watch the threads it starts.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import workerThreads = require('node:worker_threads');
import { buildCsr } from '../../tools/csr-builder';
import { DomainError } from '../common/errors';
import { AppConfig } from '../config/config';
import { parseCsr } from '../pki/csr';
import { CsrParser } from './csr-parser';

const withThreads = (cryptoThreads: number): CsrParser => new CsrParser({ cryptoThreads } as AppConfig);

/** What a caller sees of a refused CSR: the problem's code, status and detail. */
async function refusal(parse: () => unknown): Promise<{ code: string; status: number; message: string }> {
  try {
    await parse();
  } catch (error) {
    assert.ok(error instanceof DomainError, `expected a DomainError, got ${String(error)}`);
    return { code: error.code, status: error.status, message: error.message };
  }
  throw new Error('the CSR was accepted');
}

describe('CsrParser', () => {
  const pooled = withThreads(1);
  after(() => pooled.onApplicationShutdown());

  const bad: { name: string; csr: string }[] = [
    { name: 'not PEM', csr: 'hello' },
    { name: 'PEM around garbage', csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' },
    { name: 'a broken signature', csr: buildCsr({ commonName: 'dev-1', breakSignature: true }) },
    { name: 'SHA-1', csr: buildCsr({ commonName: 'dev-1', hash: 'sha1' }) },
    { name: 'an RSA-1024 key', csr: buildCsr({ key: 'rsa:1024', commonName: 'dev-1' }) },
    { name: 'a control character in the CN', csr: buildCsr({ commonName: 'dev\u0001' }) },
  ];
  for (const { name, csr } of bad) {
    it(`refuses a CSR with ${name} on a thread exactly as inline`, async () => {
      const inline = await refusal(() => parseCsr(csr));
      assert.deepEqual(await refusal(() => pooled.parse(csr)), inline);
      assert.deepEqual(await refusal(() => withThreads(0).parse(csr)), inline);
    });
  }

  it('gives the ParsedCsr of an inline parse, its key usable', async () => {
    const csr = buildCsr({ commonName: 'dev-2', dnsNames: ['dev-2.example'] });
    const fromThread = await pooled.parse(csr);
    const inline = parseCsr(csr);
    assert.deepEqual({ ...fromThread, publicKey: { ...fromThread.publicKey, keyObject: null } }, { ...inline, publicKey: { ...inline.publicKey, keyObject: null } });
    assert.ok(fromThread.publicKey.keyObject.equals(inline.publicKey.keyObject));
  });

  it('answers 503 for the CSR a dying thread held, then parses on a new thread', async (t) => {
    // The threads the pool starts, so that the test can end one (as a fatal error in native code would).
    const started: workerThreads.Worker[] = [];
    const RealWorker = workerThreads.Worker;
    t.mock.property(workerThreads, 'Worker', class extends RealWorker {
      constructor(...args: ConstructorParameters<typeof RealWorker>) {
        super(...args);
        started.push(this);
      }
    });
    const parser = withThreads(1);
    try {
      assert.equal((await parser.parse(buildCsr({ commonName: 'dev-4' }))).subject.commonName, 'dev-4');
      assert.equal(started.length, 1);
      void started[0].terminate();
      assert.deepEqual(await refusal(() => parser.parse(buildCsr({ commonName: 'dev-5' }))), {
        code: 'CRYPTO_THREADS_UNAVAILABLE',
        status: 503,
        message: 'the CSR could not be checked (a worker thread exited (code 1) while running this task); retry',
      });
      assert.equal((await parser.parse(buildCsr({ commonName: 'dev-6' }))).subject.commonName, 'dev-6');
      assert.equal(started.length, 2);
    } finally {
      await parser.onApplicationShutdown();
    }
  });

  it('answers 503 CRYPTO_THREADS_UNAVAILABLE when its threads cannot take the CSR', async () => {
    const closed = withThreads(1);
    await closed.onApplicationShutdown();
    assert.deepEqual(await refusal(() => closed.parse(buildCsr({ commonName: 'dev-3' }))), {
      code: 'CRYPTO_THREADS_UNAVAILABLE',
      status: 503,
      message: 'the CSR could not be checked (the thread pool is closed); retry',
    });
  });
});
