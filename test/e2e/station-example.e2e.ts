import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OpenSslWorkspace } from '../support/openssl';
import { contractError } from '../support/response-validator';
import { exchangeAudience } from '../support/station';
import type { Response } from 'supertest';
import { bearer, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];
interface AuditEvent {
  details: { claimId?: string; deviceSerial?: string; station?: { method: string; name: string | null } };
}

const STATION = path.resolve(__dirname, '../../examples/station/station.js');

/**
 * The example factory station (examples/station) run as integrators run it: a child process with a claim
 * certificate and key on disk, against the real service. openssl checks what it wrote.
 */
describe('example station (examples/station)', () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-station-'));
  let rootPem: string;
  let claimId: string;
  let claimCert: string;
  let claimKey: string;
  let authorities: { claimAuthorityId: string; deviceAuthorityId: string };

  before(async () => {
    t = await startTestApp('sqlite');
    const root = await admin('/v1/authorities', { name: 'Root', type: 'root', subject: { commonName: 'Station Root' } });
    rootPem = root.certificatePem;
    const claims = await admin('/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Station Claims CA' } });
    const devices = await admin('/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Station Devices CA' } });
    authorities = { claimAuthorityId: claims.id, deviceAuthorityId: devices.id };
    const claim = await admin('/v1/claims', {
      name: 'Line 1', factory: 'Example', ...authorities, maxDevices: 10, serialPattern: 'SN[0-9]{4}',
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), thingNameTemplate: 'acme-{serial}', claimCertificate: { generateKey: true },
    });
    claimId = claim.id;
    claimCert = path.join(work, 'claim.pem');
    claimKey = path.join(work, 'claim.key');
    fs.writeFileSync(claimCert, claim.claimCertificate.certificatePem);
    fs.writeFileSync(claimKey, claim.claimCertificate.privateKeyPem, { mode: 0o600 });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  });

  async function admin(route: string, body: object): Promise<Body> {
    const res = await t.http().post(route).set(bearer(t.adminKey)).send(body);
    assert.equal(res.status, 201, `${route}: ${res.text}`);
    return res.body;
  }

  async function used(): Promise<number> {
    return (await t.http().get(`/v1/claims/${claimId}`).set(bearer(t.adminKey))).body.used;
  }

  /** Runs the station asynchronously: the service answers from this very process. */
  function station(serial: string, options: { url?: string; idempotencyKey?: string; claimCert?: string; claimKey?: string } = {}): Promise<{ code: number; output: string; out: string }> {
    const out = path.join(work, 'devices', serial);
    const args = [STATION, '--url', options.url ?? t.baseUrl, '--claim-cert', options.claimCert ?? claimCert, '--claim-key', options.claimKey ?? claimKey, '--serial', serial, '--out', out, '--audience', exchangeAudience(t), '--station', 'e2e-station'];
    if (options.idempotencyKey !== undefined) args.push('--idempotency-key', options.idempotencyKey);
    return new Promise((resolve) => {
      execFile(process.execPath, args, { env: { PATH: process.env.PATH }, timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, output: `${stdout}${stderr}`, out });
      });
    });
  }

  it('provisions a device: key 0600 matching the certificate, which openssl verifies up to the root; a re-run returns the same certificate', async () => {
    const first = await station('SN0001', { idempotencyKey: 'station-SN0001' });
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /^provisioned: SN0001$/m);
    assert.match(first.output, /^thingName=acme-SN0001$/m);
    assert.match(first.output, /^certificateId=[0-9a-f]{64}$/m);
    assert.match(first.output, /^iot\.status=none$/m);

    const keyFile = path.join(first.out, 'device.key');
    const certificatePem = fs.readFileSync(path.join(first.out, 'device.pem'), 'utf8');
    const chainPem = fs.readFileSync(path.join(first.out, 'chain.pem'), 'utf8');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const certificate = new X509Certificate(certificatePem);
    assert.ok(certificate.checkPrivateKey(createPrivateKey(fs.readFileSync(keyFile))), 'the key file is the certified key');
    assert.equal(certificate.fingerprint256.replace(/:/g, '').toLowerCase(), /^certificateId=(\S+)$/m.exec(first.output)![1]);
    // Device CA as the untrusted intermediate, the root as the only trust anchor.
    const verified = ssl.verify({ rootPem, intermediatesPem: chainPem.split(/(?<=-----END CERTIFICATE-----\n)/)[0], leafPem: certificatePem });
    assert.ok(verified.ok, verified.output);
    // The key matches by openssl's account too.
    const fromCert = ssl.run(['x509', '-in', path.join(first.out, 'device.pem'), '-noout', '-pubkey']);
    const fromKey = ssl.run(['pkey', '-in', keyFile, '-pubout']);
    assert.equal(fromCert.status, 0, fromCert.output);
    assert.equal(fromCert.output, fromKey.output);

    const again = await station('SN0001', { idempotencyKey: 'station-SN0001' });
    assert.equal(again.code, 0, again.output);
    assert.match(again.output, /already provisioned \(same certificate as before\)/);
    assert.equal(fs.readFileSync(path.join(first.out, 'device.pem'), 'utf8'), certificatePem);
    assert.equal(await used(), 1, 'the re-run used no quota');
  });

  it('retries once, with the same Idempotency-Key and a new token, when the answer is lost or the service is unavailable', async () => {
    for (const [serial, trouble] of [['SN0002', 'drop'], ['SN0003', '503']] as const) {
      const usedBefore = await used();
      const proxy = await troubledProxy(t.baseUrl, trouble);
      try {
        const run = await station(serial, { url: proxy.url });
        assert.equal(run.code, 0, run.output);
        assert.match(run.output, trouble === 'drop' ? /network error .*retrying/ : /service unavailable \(503\); retrying/);
        assert.equal(proxy.requests.length, 2);
        assert.equal(proxy.requests[0].idempotencyKey, `station-${serial}`, 'the default key');
        assert.equal(proxy.requests[1].idempotencyKey, proxy.requests[0].idempotencyKey);
        assert.notEqual(proxy.requests[1].authorization, proxy.requests[0].authorization, 'tokens are single use');
        assert.equal(proxy.requests[1].body, proxy.requests[0].body);
        // A lost answer means the first attempt issued; the retry got that certificate back (200), not a second one.
        assert.match(run.output, trouble === 'drop' ? /already provisioned/ : /^provisioned:/m);
        assert.equal(await used(), usedBefore + 1);
        assert.deepEqual(proxy.contractMismatches, [], 'the service’s answers match openapi.yaml');
      } finally {
        proxy.close();
      }
    }
  });

  it('signs with ES384 for a P-384 claim key and RS256 for an RSA one', async () => {
    for (const keySpec of ['EC_P384', 'RSA_2048']) {
      const claim = await admin('/v1/claims', {
        name: keySpec, factory: 'Example', ...authorities, maxDevices: 1, notAfter: new Date(Date.now() + 86_400_000).toISOString(),
        thingNameTemplate: `${keySpec.toLowerCase().replace('_', '-')}-{serial}`, claimCertificate: { generateKey: true, keySpec },
      });
      const files = { claimCert: path.join(work, `${keySpec}.pem`), claimKey: path.join(work, `${keySpec}.key`) };
      // The claim CA's chain after the claim certificate: the station sends it in x5c, leaf first.
      fs.writeFileSync(files.claimCert, claim.claimCertificate.certificatePem + claim.claimCertificate.chainPem);
      fs.writeFileSync(files.claimKey, claim.claimCertificate.privateKeyPem, { mode: 0o600 });
      const serial = keySpec === 'RSA_2048' ? 'SN0011' : 'SN0010';
      const run = await station(serial, files);
      assert.equal(run.code, 0, run.output);
      const events = await t.http().get(`/v1/audit?action=certificate.issued&limit=500`).set(bearer(t.adminKey));
      const issued = (events.body.items as AuditEvent[]).find((e) => e.details.claimId === claim.id && e.details.deviceSerial === serial);
      assert.equal(issued?.details.station?.method, 'jwt');
      assert.equal(issued?.details.station?.name, 'e2e-station');
    }
  });

  it('prints the problem code and detail and exits non-zero when the service refuses', async () => {
    const run = await station('XX0001');
    assert.equal(run.code, 1, run.output);
    assert.match(run.output, /refused: HTTP 403 code=SERIAL_NOT_ALLOWED detail=serial XX0001 does not match/);
    assert.equal(fs.existsSync(path.join(run.out, 'device.pem')), false);
  });

  it('exits 2 with usage when an option is missing', async () => {
    const result = await new Promise<{ code: number; output: string }>((resolve) =>
      execFile(process.execPath, [STATION, '--url', t.baseUrl], { env: { PATH: process.env.PATH } }, (err, stdout, stderr) =>
        resolve({ code: err && typeof err.code === 'number' ? err.code : 0, output: `${stdout}${stderr}` }),
      ),
    );
    assert.equal(result.code, 2);
    assert.match(result.output, /--claim-cert \(CLAIM_CERT_FILE\) is required/);
  });
});

/**
 * A proxy in front of the service whose first exchange goes wrong: 'drop' forwards it and then cuts the
 * connection instead of answering (the station's answer is lost after the service issued); '503' answers
 * 503 without forwarding. Later requests pass through.
 */
async function troubledProxy(target: string, trouble: 'drop' | '503') {
  const requests: { authorization?: string; idempotencyKey?: string; body: string }[] = [];
  const contractMismatches: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ authorization: req.headers.authorization, idempotencyKey: req.headers['idempotency-key'] as string | undefined, body });
      const first = requests.length === 1;
      if (first && trouble === '503') {
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
        res.end(JSON.stringify({ status: 503, code: 'KEY_BACKEND_UNAVAILABLE', detail: 'try later' }));
        return;
      }
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const name of ['authorization', 'idempotency-key']) if (req.headers[name]) headers[name] = req.headers[name] as string;
      const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, body });
      const text = await answer.text();
      // What the service answered the station is checked against openapi.yaml like every supertest response.
      const mismatch = contractError({ method: req.method ?? 'POST', url: req.url ?? '/', status: answer.status, headers: Object.fromEntries(answer.headers), body: JSON.parse(text) });
      if (mismatch) contractMismatches.push(mismatch.message);
      if (first && trouble === 'drop') {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    contractMismatches,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
