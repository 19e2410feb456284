import assert from 'node:assert/strict';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MetricsService } from '../metrics/metrics.service';
import { OcspHttpBinding } from './ocsp-http';
import { OcspAnswer, OcspService } from './ocsp.service';

/** The binding on a bare node:http server, with a stand-in responder whose behaviour each test sets. */
describe('OcspHttpBinding', () => {
  let behaviour: { reuse(body: Buffer): OcspAnswer | undefined; answer(body: Buffer): Promise<OcspAnswer> };
  const seen: Buffer[] = [];
  const answer = (der: string): OcspAnswer => ({ der: Buffer.from(der) });
  let server: http.Server;
  let base: string;

  before(async () => {
    const responder = { reuse: (body: Buffer) => behaviour.reuse(body), answer: (body: Buffer) => behaviour.answer(body) } as unknown as OcspService;
    const binding = new OcspHttpBinding(responder, new MetricsService());
    server = http.createServer((req, res) => {
      if (!binding.handle(req, res)) res.writeHead(404).end('framework');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers from reuse() without calling answer(), and from answer() otherwise, with the request body', async () => {
    behaviour = { reuse: (body) => (seen.push(body), body.toString() === 'cached' ? answer('from-cache') : undefined), answer: async (body) => answer(`signed:${body.toString()}`) };
    const cached = await fetch(`${base}/ocsp`, { method: 'POST', body: 'cached' });
    assert.equal(await cached.text(), 'from-cache');
    assert.equal(cached.headers.get('cache-control'), 'no-store');
    const fresh = await fetch(`${base}/ocsp/`, { method: 'POST', body: 'fresh' });
    assert.equal(await fresh.text(), 'signed:fresh');
    assert.deepEqual(seen.map(String), ['cached', 'fresh']);
  });

  it('leaves other paths and methods to the framework', async () => {
    behaviour = { reuse: () => assert.fail('not for the binding'), answer: () => assert.fail('not for the binding') };
    for (const [method, path] of [['GET', '/ocspx'], ['PUT', '/ocsp'], ['POST', '/ocsp/abc'], ['DELETE', '/ocsp/abc'], ['GET', '/v1/ocsp']]) {
      const res = await fetch(`${base}${path}`, { method });
      assert.equal(await res.text(), 'framework', `${method} ${path}`);
    }
  });

  it('drops the connection, and keeps serving, when the responder fails unexpectedly (sync or async)', async () => {
    behaviour = { reuse: () => { throw new Error('boom'); }, answer: async () => answer('unused') };
    await assert.rejects(fetch(`${base}/ocsp`, { method: 'POST', body: 'x' }));
    behaviour = { reuse: () => undefined, answer: () => Promise.reject(new Error('boom')) };
    await assert.rejects(fetch(`${base}/ocsp`, { method: 'POST', body: 'x' }));
    behaviour = { reuse: () => answer('fine'), answer: async () => answer('unused') };
    assert.equal(await (await fetch(`${base}/ocsp`, { method: 'POST', body: 'x' })).text(), 'fine');
  });
});
