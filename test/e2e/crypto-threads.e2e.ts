import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { buildCsr } from '../../tools/csr-builder';
import { bearer, startTestApp, TestApp } from '../support/test-app';

/**
 * CSRs read on the crypto threads (CRYPTO_THREADS, docs/architecture.md "Crypto threads") are refused with the very
 * problem an inline read gives: the same service, once with one thread and once with none, over HTTP. SQLite only:
 * nothing here depends on the database driver.
 */
describe('crypto threads: a CSR refused on a thread is the problem it is inline', () => {
  const apps: Record<'threads' | 'inline', { t: TestApp; authorityId: string } | undefined> = { threads: undefined, inline: undefined };

  async function start(cryptoThreads: string): Promise<{ t: TestApp; authorityId: string }> {
    const t = await startTestApp('sqlite', { env: { CRYPTO_THREADS: cryptoThreads } });
    assert.equal(t.config.cryptoThreads, Number(cryptoThreads));
    const create = async (body: object) => (await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send(body)).body;
    const root = await create({ name: 'Threads Root', type: 'root', subject: { commonName: 'Threads Root' } });
    const ca = await create({ name: 'Threads Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Threads Devices CA' } });
    return { t, authorityId: ca.id };
  }

  before(async () => {
    apps.threads = await start('1');
    apps.inline = await start('0');
  });
  after(async () => {
    await apps.threads?.t.close();
    await apps.inline?.t.close();
  });

  async function issue(which: 'threads' | 'inline', csr: string, thingName: string): Promise<Response> {
    const { t, authorityId } = apps[which]!;
    return t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({ authorityId, csr, profile: 'device', thingName });
  }

  /** The parts of a problem that are the same for the same refusal (not the request id or instance). */
  const refusal = (res: Response) => ({ status: res.status, type: res.headers['content-type'], code: res.body.code, title: res.body.title, detail: res.body.detail });

  const cases: { name: string; csr: () => string; status: number; code: string }[] = [
    { name: 'garbage in a PEM block', csr: () => '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', status: 400, code: 'INVALID_CSR' },
    { name: 'a signature that does not verify', csr: () => buildCsr({ commonName: 'dev-1', breakSignature: true }), status: 400, code: 'CSR_SIGNATURE_INVALID' },
    { name: 'a SHA-1 signature', csr: () => buildCsr({ commonName: 'dev-1', hash: 'sha1' }), status: 422, code: 'WEAK_SIGNATURE_ALGORITHM' },
    { name: 'a secp256k1 key', csr: () => buildCsr({ key: 'ec:secp256k1', commonName: 'dev-1' }), status: 422, code: 'UNSUPPORTED_KEY' },
  ];
  for (const { name, csr, status, code } of cases) {
    it(`refuses a CSR with ${name} with the same ${status} ${code}`, async () => {
      const pem = csr();
      const onThread = await issue('threads', pem, 'dev-1');
      const inline = await issue('inline', pem, 'dev-1');
      assert.equal(onThread.status, status, onThread.text);
      assert.equal(onThread.body.code, code);
      assert.deepEqual(refusal(onThread), refusal(inline));
    });
  }

  it('issues from a good CSR read on a thread', async () => {
    const res = await issue('threads', buildCsr({ commonName: 'dev-2' }), 'dev-2');
    assert.equal(res.status, 201, res.text);
  });
});
