import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CrlEntriesJob, CrlWorker } from '../../src/revocation/crl-worker';
import { CrlRepository } from '../../src/revocation/crl.repository';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, binaryBody, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * A CRL's entries are read and encoded on a worker thread with a connection of its own (docs/architecture.md "CRLs"):
 * the CRL it makes verifies with openssl, and a worker that fails publishes nothing and is retried by the next request.
 */
for (const { driver, skip } of drivers()) {
  describe(`CRL built on a worker thread on ${driver}`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let caId: string;
    let caPem: string;
    let worker: CrlWorker;
    const jobs: CrlEntriesJob[] = [];

    const getCrl = () => t.http().get(`/v1/authorities/${caId}/crl`).buffer(true).parse(binaryBody);
    const revoke = async (thing: string) => {
      const device = await issueDevice(t, ssl, caId, thing);
      const res = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      // The revocation stands whether or not the CRL could be re-signed right after it.
      assert.equal(res.status, 200);
      return device.serial;
    };
    const listedSerials = (der: Buffer, name: string) => {
      const text = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file(name, der), '-noout', '-text']).output;
      return [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1].toLowerCase());
    };

    before(async () => {
      t = await startTestApp(driver);
      const pair = await createCaPair(t);
      caId = pair.intermediate.id;
      caPem = (await t.http().get(`/v1/authorities/${caId}`).set(bearer(t.adminKey))).body.certificatePem as string;
      worker = t.app.get(CrlWorker);
      // Records the jobs the service hands to the worker thread (the real one still runs them).
      const build = worker.build.bind(worker);
      worker.build = (job) => (jobs.push(job), build(job));
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('builds the CRL on the worker thread: openssl verifies it against the CA and it lists the revocations', async () => {
      const serials = [await revoke('worker-a'), await revoke('worker-b')];
      const res = await getCrl();
      assert.equal(res.status, 200);
      assert.ok(jobs.length >= 1, 'the CRL was built by the worker thread');
      assert.equal(jobs.at(-1)!.source.driver, driver);
      const verify = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('worker.crl', res.body as Buffer), '-CAfile', ssl.file('ca.pem', caPem), '-noout']);
      assert.match(verify.output, /verify OK/, verify.output);
      assert.deepEqual(new Set(listedSerials(res.body as Buffer, 'worker-text.crl')), new Set(serials));
    });

    it('publishes nothing when the worker fails, answers CRL_BUILD_FAILED, and the next request builds the CRL', async () => {
      const repository = t.app.get(CrlRepository);
      const before = await repository.latestInfo(caId);
      // A worker thread that dies: its script throws before answering.
      const script = ssl.file('failing-worker.js', "throw new Error('simulated worker failure');\n");
      const realScript = (worker as unknown as { script: string }).script;
      Object.assign(worker, { script });
      let serial: string;
      try {
        serial = await revoke('worker-c');
        const failed = await t.http().get(`/v1/authorities/${caId}/crl`);
        assert.equal(failed.status, 503);
        assert.equal(failed.body.code, 'CRL_BUILD_FAILED');
        assert.deepEqual(await repository.latestInfo(caId), before, 'no CRL was published');
      } finally {
        Object.assign(worker, { script: realScript });
      }
      const res = await getCrl();
      assert.equal(res.status, 200);
      const after = await repository.latestInfo(caId);
      assert.ok(after!.crlNumber > before!.crlNumber);
      assert.ok(listedSerials(res.body as Buffer, 'retried.crl').includes(serial));
      const verify = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('retried.crl'), '-CAfile', ssl.file('ca.pem'), '-noout']);
      assert.match(verify.output, /verify OK/, verify.output);
    });
  });
}
