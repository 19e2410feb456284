import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { probePublicTrust } from './public-tls-trust';

/** A private CA and a server certificate it issued for localhost/127.0.0.1, made by openssl. */
function privatePki(dir: string): { caPem: string; certPem: string; keyPem: string; selfSignedPem: string; selfSignedKeyPem: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Private Test Root', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf']);
  run(['req', '-x509', ...ec, '-keyout', 'self.key', '-out', 'self.pem', '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
  return { caPem: read('ca.pem'), certPem: read('server.pem'), keyPem: read('server.key'), selfSignedPem: read('self.pem'), selfSignedKeyPem: read('self.key') };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('probePublicTrust', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-tls-trust-'));
  const pki = privatePki(dir);
  const servers: net.Server[] = [];
  let privatePort: number;
  let selfSignedPort: number;
  let silentPort: number;
  let closedPort: number;

  before(async () => {
    const privateServer = tls.createServer({ cert: pki.certPem, key: pki.keyPem }, (s) => s.end());
    const selfSigned = tls.createServer({ cert: pki.selfSignedPem, key: pki.selfSignedKeyPem }, (s) => s.end());
    // Accepts TCP, never answers the TLS handshake: an endpoint filtered somewhere on the way.
    const silent = net.createServer(() => undefined);
    servers.push(privateServer, selfSigned, silent);
    privatePort = await listen(privateServer);
    selfSignedPort = await listen(selfSigned);
    silentPort = await listen(silent);
    const probe = net.createServer();
    closedPort = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
  });

  after(() => {
    for (const server of servers) server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const publicRoots = { trustStore: tls.rootCertificates, timeoutMs: 3000 };

  it('reports a chain from a private CA as not publicly trusted, naming the reason and the chain', async () => {
    const verdict = await probePublicTrust(`https://localhost:${privatePort}/`, publicRoots);
    assert.equal(verdict.trusted, false);
    assert.ok(!verdict.trusted && verdict.reason === 'untrusted-issuer', JSON.stringify(verdict));
    assert.match(verdict.detail, /private CA/);
    assert.equal(verdict.chain[0].subject, 'CN=localhost');
    assert.equal(verdict.chain[0].issuer, 'CN=Private Test Root');
  });

  it('accepts the same server when its CA is in the trust store (the trusted branch, with an injected store)', async () => {
    const verdict = await probePublicTrust(`https://localhost:${privatePort}/v1/iot/events`, { trustStore: [pki.caPem], timeoutMs: 3000 });
    assert.equal(verdict.trusted, true, JSON.stringify(verdict));
    assert.match(verdict.detail, /Private Test Root/);
  });

  it('checks the host name against the certificate', async () => {
    // 127.0.0.2 is loopback too, but the certificate names only localhost and 127.0.0.1.
    const server = tls.createServer({ cert: pki.certPem, key: pki.keyPem }, (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const verdict = await probePublicTrust(`https://127.0.0.2:${port}/`, { trustStore: [pki.caPem], timeoutMs: 3000 });
      assert.ok(!verdict.trusted && verdict.reason === 'hostname-mismatch', JSON.stringify(verdict));
    } finally {
      server.close();
    }
  });

  it('reports a self-signed server certificate', async () => {
    const verdict = await probePublicTrust(`https://127.0.0.1:${selfSignedPort}`, publicRoots);
    assert.ok(!verdict.trusted && verdict.reason === 'self-signed', JSON.stringify(verdict));
  });

  it('reports http:// without connecting', async () => {
    const verdict = await probePublicTrust(`http://127.0.0.1:${closedPort}/`, publicRoots);
    assert.ok(!verdict.trusted && verdict.reason === 'not-https', JSON.stringify(verdict));
    assert.match(verdict.detail, /https:\/\/ URLs only/);
  });

  it('reports a closed port as unreachable', async () => {
    const verdict = await probePublicTrust(`https://127.0.0.1:${closedPort}/`, publicRoots);
    assert.ok(!verdict.trusted && verdict.reason === 'unreachable', JSON.stringify(verdict));
  });

  it('gives up on a silent endpoint within its time bound', async () => {
    const started = Date.now();
    const verdict = await probePublicTrust(`https://127.0.0.1:${silentPort}/`, { trustStore: tls.rootCertificates, timeoutMs: 300 });
    const elapsed = Date.now() - started;
    assert.ok(!verdict.trusted && verdict.reason === 'timeout', JSON.stringify(verdict));
    assert.ok(elapsed >= 290 && elapsed < 2000, `took ${elapsed} ms`);
  });
});
