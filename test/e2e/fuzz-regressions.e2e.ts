import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { answerProblem, describeRequest, REQUEST_BOUND_MS, sendWithinBound, Sent } from '../support/fuzz';
import { decodeSinglePem } from '../../src/pki/der';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * Replays every counterexample the fuzzers found (test/fuzz/corpus/http.json, docs/fuzzing.md) on both drivers: each
 * must keep the fuzzing rules (answered within its bound, below 500, 4xx as problem+json), get the status its entry
 * expects, and leave the service answering others meanwhile (/healthz within REQUEST_BOUND_MS while it runs, and the
 * event loop — the app runs in this process — never blocked for EVENT_LOOP_BOUND_MS).
 */

const EVENT_LOOP_BOUND_MS = 500;

interface Entry {
  name: string;
  found: string;
  outcome: string;
  request: Sent & { bodyBase64?: string };
  expectStatus: number[];
}

const CORPUS = path.resolve(__dirname, '..', '..', '..', 'test', 'fuzz', 'corpus', 'http.json');
const entries = (JSON.parse(fs.readFileSync(CORPUS, 'utf8')) as { entries: Entry[] }).entries;

for (const { driver, skip } of drivers()) {
  describe(`fuzz regressions on ${driver}`, { skip }, () => {
    let t: TestApp;
    let authorityId: string;

    before(async () => {
      t = await startTestApp(driver);
      const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Regression Root', type: 'root', subject: { commonName: 'Regression Root' }, pathLength: 1 });
      assert.equal(root.status, 201, root.text);
      const intermediate = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Regression CA', type: 'intermediate', parentId: root.body.id, subject: { commonName: 'Regression CA' } });
      assert.equal(intermediate.status, 201, intermediate.text);
      authorityId = intermediate.body.id;
      // The EST label issues under a CA of its own: an entry may rotate (retire) {authority}.
      const estCa = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({ name: 'Regression EST CA', type: 'intermediate', parentId: root.body.id, subject: { commonName: 'Regression EST CA' } });
      assert.equal(estCa.status, 201, estCa.text);
      const label = await t.http().post('/v1/est/labels').set(bearer(t.adminKey)).send({ label: 'keygen', kind: 'authority', authorityId: estCa.body.id, profile: 'device', validityDays: 30, serverKeygen: true, keySpec: 'RSA_3072' });
      assert.equal(label.status, 201, label.text);
    });
    after(async () => {
      await t?.close();
    });

    const fill = (text: string) =>
      text
        .replaceAll('{authority}', authorityId)
        .replaceAll('{adminKey}', t.adminKey)
        .replaceAll('{csrBase64}', () => decodeSinglePem(deviceKeyAndCsr('regression-device').csrPem, ['CERTIFICATE REQUEST']).toString('base64'));

    for (const entry of entries) {
      it(`${entry.name}: ${entry.expectStatus.join(' or ')}, and others are answered meanwhile`, { timeout: 60_000 }, async () => {
        const { bodyBase64, ...raw } = entry.request;
        const request: Sent = {
          method: raw.method,
          path: fill(raw.path),
          headers: Object.fromEntries(Object.entries(raw.headers ?? {}).map(([k, v]) => [k, fill(v)])),
          body: bodyBase64 !== undefined ? Buffer.from(bodyBase64, 'base64') : typeof raw.body === 'string' ? fill(raw.body) : raw.body,
        };
        const loopDelay = monitorEventLoopDelay({ resolution: 10 });
        loopDelay.enable();
        let done = false;
        const pending = sendWithinBound(t.baseUrl, request).finally(() => (done = true));
        let probes = 0;
        while (!done) {
          const health = await sendWithinBound(t.baseUrl, { method: 'GET', path: '/healthz' });
          assert.equal(health.status, 200);
          assert.ok(health.ms < REQUEST_BOUND_MS, `/healthz took ${health.ms.toFixed(0)} ms while ${entry.name} ran`);
          probes++;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const answer = await pending;
        loopDelay.disable();
        assert.ok(loopDelay.max / 1e6 < EVENT_LOOP_BOUND_MS, `the event loop was blocked for ${(loopDelay.max / 1e6).toFixed(0)} ms`);
        assert.equal(answerProblem(`${request.method} ${request.path}`, answer.status, answer.contentType, answer.text), undefined, describeRequest(request));
        assert.ok(entry.expectStatus.includes(answer.status), `${answer.status} ${answer.text.slice(0, 300)}`);
        assert.ok(probes > 0);
      });
    }
  });
}
