import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { deviceKeyAndCsr } from '../../tools/csr-builder';
import { freePort } from '../support/free-port';
import { OpenSslWorkspace } from '../support/openssl';
import { deviceToken } from '../support/station';
import { drivers, startTestApp, TestApp } from '../support/test-app';

const root = path.resolve(__dirname, '../../..');
const BIN = path.join(root, 'bin/fleet-pki.js');

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * The fleet-pki command (bin/fleet-pki.js, docs/cli.md) run as a child process against the real service listening on
 * a port: every command group, --json parsing, each exit code, a bulk revocation, a rotation watch that ends. The
 * API key (given in FLEET_PKI_KEY) must never appear in anything the CLI prints.
 */
for (const { driver, skip } of drivers()) {
  describe(`fleet-pki CLI on ${driver}`, { skip }, () => {
    let t: TestApp;
    const ssl = new OpenSslWorkspace();
    let rootCa: { id: string };
    let issuing: { id: string };
    let claimsCa: { id: string };

    /** Runs the CLI asynchronously (the service runs in this process: a blocking spawn would stall it). */
    function cli(args: string[], options: { env?: Record<string, string | undefined>; stdin?: string; onStderr?: (stderr: string, child: ChildProcess) => void } = {}): Promise<Run> {
      return new Promise((resolve, reject) => {
        const env: Record<string, string> = { PATH: process.env.PATH ?? '', FLEET_PKI_URL: t.baseUrl, FLEET_PKI_KEY: t.adminKey };
        for (const [k, v] of Object.entries(options.env ?? {})) {
          if (v === undefined) delete env[k];
          else env[k] = v;
        }
        const child = spawn(process.execPath, [BIN, ...args], { cwd: ssl.dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
          options.onStderr?.(stderr, child);
        });
        child.on('error', reject);
        child.on('close', (status) => {
          // Whatever happened, the key must not have been printed.
          assert.ok(!stdout.includes(t.adminKey) && !stderr.includes(t.adminKey), `the API key appeared in the output of ${args.join(' ')}`);
          assert.ok(!stdout.includes(t.adminKey.split('.')[1]), 'the secret part of the API key appeared on stdout');
          resolve({ status: status ?? -1, stdout, stderr });
        });
        child.stdin.end(options.stdin ?? '');
      });
    }

    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON answers, read field by field
    async function json<T = any>(args: string[]): Promise<T> {
      const run = await cli([...args, '--json']);
      assert.equal(run.status, 0, `${args.join(' ')}: ${run.stderr}`);
      return JSON.parse(run.stdout) as T;
    }

    async function issue(thing: string, authorityId = issuing.id): Promise<{ id: string; certificatePem: string; keyFile: string }> {
      const { csrPem, keyFile } = ssl.newCsr('ec:P-256', `/CN=${thing}`);
      const csrFile = ssl.file(`${thing}.csr`, csrPem);
      const cert = await json(['certificates', 'issue', '--authority', authorityId, '--csr', csrFile, '--thing', thing]);
      return { ...cert, keyFile };
    }

    before(async () => {
      t = await startTestApp(driver);
      rootCa = await json(['authorities', 'create', '--name', 'CLI Root', '--type', 'root', '--cn', 'CLI Root CA']);
      issuing = await json(['authorities', 'create', '--name', 'CLI Issuing', '--type', 'intermediate', '--parent', rootCa.id, '--cn', 'CLI Issuing CA']);
      claimsCa = await json(['authorities', 'create', '--name', 'CLI Claims', '--type', 'intermediate', '--parent', rootCa.id, '--cn', 'CLI Claims CA', '--usage', 'claims']);
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    describe('authorities', () => {
      it('lists the authorities as a table, and as JSON for scripts', async () => {
        const table = await cli(['authorities', 'list']);
        assert.equal(table.status, 0, table.stderr);
        assert.match(table.stdout, /^ID\s+NAME\s+TYPE\s+USAGE\s+STATUS/m);
        assert.match(table.stdout, new RegExp(`^${issuing.id}\\s+CLI Issuing\\s+intermediate\\s+devices\\s+active`, 'm'));
        const list = await json<{ id: string; usage: string }[]>(['authorities', 'list']);
        assert.deepEqual(list.map((a) => a.id).sort(), [rootCa.id, issuing.id, claimsCa.id].sort());
      });

      it('rotates an intermediate: the successor is active, the predecessor retiring', async () => {
        const old = await json(['authorities', 'create', '--name', 'To rotate', '--type', 'intermediate', '--parent', rootCa.id, '--cn', 'Rotating CA']);
        const rotated = await json(['authorities', 'rotate', old.id, '--name', 'Rotated']);
        assert.equal(rotated.predecessor.status, 'retiring');
        assert.equal(rotated.successor.status, 'active');
        assert.equal(rotated.successor.name, 'Rotated');
      });
    });

    describe('certificates', () => {
      it('issues from an openssl CSR, writes the PEM with --out, and openssl verifies it', async () => {
        const { csrPem } = ssl.newCsr('ec:P-256', '/CN=cli-thing-1');
        ssl.file('cli-thing-1.csr', csrPem);
        const run = await cli(['certificates', 'issue', '--authority', issuing.id, '--csr', 'cli-thing-1.csr', '--thing', 'cli-thing-1', '--out', 'cli-thing-1.pem', '--chain']);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /^status:\s+active$/m);
        assert.match(run.stdout, /^thing:\s+cli-thing-1$/m);
        assert.match(run.stdout, /PEM written to cli-thing-1\.pem/);
        const pem = fs.readFileSync(ssl.file('cli-thing-1.pem'), 'utf8');
        assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 3, 'leaf, intermediate and root');
        const rootPem = (await json(['authorities', 'list'])).find((a: { id: string }) => a.id === rootCa.id).certificatePem;
        const leaf = pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 25);
        assert.ok(ssl.verify({ rootPem, intermediatesPem: pem, leafPem: leaf }).ok);
      });

      it('gets a certificate and finds it by thing name', async () => {
        const cert = await issue('cli-thing-2');
        const got = await json(['certificates', 'get', cert.id]);
        assert.equal(got.id, cert.id);
        assert.equal(got.thingName, 'cli-thing-2');
        const found = await json<{ id: string }[]>(['certificates', 'search', '--thing', 'cli-thing-2']);
        assert.deepEqual(found.map((c) => c.id), [cert.id]);
        const table = await cli(['certificates', 'search', '--thing', 'cli-thing-2']);
        assert.match(table.stdout, new RegExp(`^${cert.id}\\s+active\\s+cli-thing-2`, 'm'));
      });

      it('revokes one certificate; revoking it again is refused (exit 2) with the code and a hint', async () => {
        const cert = await issue('cli-thing-3');
        const run = await cli(['certificates', 'revoke', cert.id, '--reason', 'keyCompromise']);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /revoked \(keyCompromise\)/);
        const again = await cli(['certificates', 'revoke', cert.id]);
        assert.equal(again.status, 2);
        assert.match(again.stderr, /^fleet-pki: error: .*\(CERTIFICATE_ALREADY_REVOKED, HTTP 409\)$/m);
        assert.match(again.stderr, /^hint: nothing to do/m);
      });

      it('bulk-revokes what a search matches: refuses without --yes, then revokes them all with a progress bar', async () => {
        const bulkCa = await json(['authorities', 'create', '--name', 'Bulk', '--type', 'intermediate', '--parent', rootCa.id, '--cn', 'Bulk CA']);
        const certs = [];
        for (let i = 0; i < 6; i++) certs.push(await issue(`bulk-${i}`, bulkCa.id));
        const unconfirmed = await cli(['certificates', 'revoke', '--search', '--authority', bulkCa.id]);
        assert.equal(unconfirmed.status, 1);
        assert.match(unconfirmed.stderr, /6 certificate\(s\) match; nothing revoked/);
        assert.match(unconfirmed.stderr, /--yes/);
        assert.equal((await json(['certificates', 'search', '--authority', bulkCa.id, '--status', 'active'])).length, 6);

        const run = await cli(['certificates', 'revoke', '--search', '--authority', bulkCa.id, '--reason', 'cessationOfOperation', '--yes', '--json', '--progress']);
        assert.equal(run.status, 0, run.stderr);
        const result = JSON.parse(run.stdout);
        assert.equal(result.matched, 6);
        assert.deepEqual([...result.revoked].sort(), certs.map((c) => c.id).sort());
        assert.deepEqual(result.failed, []);
        assert.match(run.stderr, /revoking \[.*\] 100% \| 6\/6 certificates/);
        assert.deepEqual(await json(['certificates', 'search', '--authority', bulkCa.id, '--status', 'active']), []);
        const revoked = await json<{ revocationReason: string }[]>(['certificates', 'search', '--authority', bulkCa.id, '--status', 'revoked']);
        assert.equal(revoked.length, 6);
        assert.ok(revoked.every((c) => c.revocationReason === 'cessationOfOperation'));
      });

      it('stops a bulk revocation cleanly on Ctrl-C: what was started finishes, the rest is counted, exit 130', async () => {
        const lotCa = await json(['authorities', 'create', '--name', 'Lot', '--type', 'intermediate', '--parent', rootCa.id, '--cn', 'Lot CA']);
        const csr = ssl.newCsr('ec:P-256', '/CN=lot').csrPem;
        const total = 100;
        for (let i = 0; i < total; i++) {
          const res = await t.http().post('/v1/certificates').set('Authorization', `Bearer ${t.adminKey}`).send({ authorityId: lotCa.id, csr, profile: 'device', thingName: `lot-${i}` });
          assert.equal(res.status, 201, res.text);
        }
        let signalled = false;
        const run = await cli(['certificates', 'revoke', '--search', '--authority', lotCa.id, '--yes', '--json', '--progress'], {
          onStderr: (stderr, child) => {
            if (!signalled && /revoking \[/.test(stderr)) {
              signalled = true;
              child.kill('SIGINT');
            }
          },
        });
        assert.equal(run.status, 130, run.stderr);
        const result = JSON.parse(run.stdout);
        assert.equal(result.interrupted, true);
        assert.ok(result.revoked.length < total, `${result.revoked.length} revoked`);
        const stillActive = await json<unknown[]>(['certificates', 'search', '--authority', lotCa.id, '--status', 'active']);
        assert.equal(stillActive.length, total - result.revoked.length, 'every revocation reported is done, no other');
        assert.match(JSON.parse(run.stderr.trim().split('\n').pop()!).error.message, /interrupted/);
      });
    });

    describe('claims', () => {
      let claimId: string;

      it('creates a claim with a generated key written to --key-out (0600), never to stdout', async () => {
        const run = await cli([
          'claims', 'create', '--name', 'Line 1', '--factory', 'Shenzhen', '--line', 'L1',
          '--claim-authority', claimsCa.id, '--device-authority', issuing.id, '--max-devices', '100', '--not-after', '30d',
          '--thing-name-template', 'acme-{serial}', '--generate-key', '--key-out', 'station.key', '--cert-out', 'station.pem', '--json',
        ]);
        assert.equal(run.status, 0, run.stderr);
        const claim = JSON.parse(run.stdout);
        claimId = claim.id;
        assert.equal(claim.status, 'active');
        assert.equal(claim.claimCertificate.privateKeyPem, undefined);
        assert.doesNotMatch(run.stdout, /PRIVATE KEY/);
        const keyFile = ssl.file('station.key');
        assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
        assert.match(fs.readFileSync(keyFile, 'utf8'), /BEGIN PRIVATE KEY/);
        assert.match(fs.readFileSync(ssl.file('station.pem'), 'utf8'), /BEGIN CERTIFICATE/);

        // An existing --key-out (which would keep its own, looser mode) is refused before any claim is made.
        const before = (await json(['claims', 'list'])).length;
        ssl.file('taken.key', 'not a key');
        const taken = await cli([
          'claims', 'create', '--name', 'Line 2', '--factory', 'Shenzhen', '--claim-authority', claimsCa.id, '--device-authority', issuing.id,
          '--max-devices', '1', '--not-after', '30d', '--thing-name-template', 'acme-{serial}', '--generate-key', '--key-out', 'taken.key',
        ]);
        assert.equal(taken.status, 1, taken.stderr);
        assert.match(taken.stderr, /cannot create --key-out taken\.key: it exists/);
        assert.equal(fs.readFileSync(ssl.file('taken.key'), 'utf8'), 'not a key');
        assert.equal((await json(['claims', 'list'])).length, before, 'no claim was created');
      });

      it('uploads an allow-list file of 20 000 serials, streamed, with a byte progress bar', async () => {
        const serials = Array.from({ length: 20_000 }, (_, i) => `SN${String(i).padStart(8, '0')}`);
        ssl.file('serials.csv', `serial\n${serials.join('\n')}\n`);
        const run = await cli(['claims', 'allowlist', 'upload', claimId, 'serials.csv', '--progress']);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /replaced: 20000 serial\(s\)/);
        assert.match(run.stderr, /uploading \[.*\] 100% \| \d+\/\d+ bytes/);
        ssl.file('serials.json', JSON.stringify(['A1', 'A2']));
        assert.equal((await json(['claims', 'allowlist', 'upload', claimId, 'serials.json'])).allowlistSize, 2);
        const table = await cli(['claims', 'list']);
        assert.match(table.stdout, new RegExp(`^${claimId}\\s+Line 1\\s+Shenzhen\\s+L1\\s+active\\s+0/100`, 'm'));
        assert.equal((await json(['claims', 'get', claimId])).allowlistSize, 2);
      });

      it('revokes the claim; a missing serials file is a usage error (exit 1)', async () => {
        const missing = await cli(['claims', 'allowlist', 'upload', claimId, 'no-such-file.csv']);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /cannot read the serials from no-such-file\.csv \(ENOENT\)/);
        const revoked = await json(['claims', 'revoke', claimId, '--cascade', '--reason', 'cessationOfOperation']);
        assert.equal(revoked.status, 'revoked');
        assert.equal(revoked.revokedDeviceCertificates, 0);
      });
    });

    describe('rotations', () => {
      it('starts a campaign, shows its status, and watch follows it until every device has renewed', async () => {
        const a = await issue('rot-a');
        const b = await issue('rot-b');
        const campaign = await json(['rotations', 'start', '--certificate', `${a.id},${b.id}`, '--reason', 'CLI test', '--deadline', '30d']);
        assert.equal(campaign.status, 'open');
        assert.deepEqual(campaign.progress, { total: 2, renewed: 0, pending: 2, revoked: 0, overdue: 0 });
        const status = await cli(['rotations', 'status', campaign.id]);
        assert.match(status.stdout, /^progress:\s+0 renewed, 2 pending, 0 revoked, 0 overdue of 2$/m);
        const list = await json<{ id: string }[]>(['rotations', 'status']);
        assert.ok(list.some((c) => c.id === campaign.id));

        const watching = cli(['rotations', 'watch', campaign.id, '--interval', '1', '--progress', '--json']);
        for (const device of [a, b]) {
          const token = deviceToken(t, device.certificatePem, createPrivateKey(fs.readFileSync(device.keyFile)));
          const res = await t.http().post('/v1/certificates/renew').set('Authorization', `Bearer ${token}`).send({ csr: deviceKeyAndCsr(device.id).csrPem });
          assert.equal(res.status, 201, res.text);
        }
        const watched = await watching;
        assert.equal(watched.status, 0, watched.stderr);
        const final = JSON.parse(watched.stdout);
        assert.equal(final.status, 'completed');
        assert.deepEqual(final.progress, { total: 2, renewed: 2, pending: 0, revoked: 0, overdue: 0 });
        assert.match(watched.stderr, /renewed \[.*\] 100% \| 2\/2 certificates/);
      });
    });

    describe('errors and exit codes', () => {
      it('exit 1: an unknown command, a missing option, an unreadable CSR, no API key', async () => {
        const unknown = await cli(['certificate', 'list']);
        assert.equal(unknown.status, 1);
        assert.match(unknown.stderr, /unknown command 'certificate'/);
        const missing = await cli(['certificates', 'issue', '--csr', 'x.csr']);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /required option '--authority <id>' not specified/);
        const unreadable = await cli(['certificates', 'issue', '--authority', issuing.id, '--csr', 'nope.csr']);
        assert.equal(unreadable.status, 1);
        assert.match(unreadable.stderr, /cannot read the CSR from nope\.csr \(ENOENT\)/);
        const noKey = await cli(['authorities', 'list'], { env: { FLEET_PKI_KEY: undefined } });
        assert.equal(noKey.status, 1);
        assert.match(noKey.stderr, /no API key[\s\S]*hint: set FLEET_PKI_KEY or pass --key-file/);
      });

      it('exit 2: an unknown certificate, a wrong key (named as such), with the problem code in --json errors', async () => {
        const notFound = await cli(['certificates', 'get', '00000000-0000-4000-8000-000000000000', '--json']);
        assert.equal(notFound.status, 2);
        assert.equal(notFound.stdout, '');
        const error = JSON.parse(notFound.stderr).error;
        assert.equal(error.code, 'CERTIFICATE_NOT_FOUND');
        assert.equal(error.exitCode, 2);
        assert.match(error.hint, /fleet-pki certificates search/);
        const wrongKey = t.adminKey.slice(0, -4) + 'AAAA';
        const unauthorized = await cli(['authorities', 'list'], { env: { FLEET_PKI_KEY: wrongKey } });
        assert.equal(unauthorized.status, 2);
        assert.match(unauthorized.stderr, /\(UNAUTHENTICATED, HTTP 401\)/);
        assert.match(unauthorized.stderr, /hint: the API key is missing, mistyped, expired or revoked/);
        assert.ok(!unauthorized.stderr.includes(wrongKey));
      });

      it('reads the key from --key-file (or stdin) and warns when it is passed on the command line', async () => {
        const keyFile = ssl.file('api.key', `${t.adminKey}\n`);
        const fromFile = await cli(['authorities', 'list', '--key-file', keyFile], { env: { FLEET_PKI_KEY: undefined } });
        assert.equal(fromFile.status, 0, fromFile.stderr);
        const fromStdin = await cli(['authorities', 'list', '--key-file', '-'], { env: { FLEET_PKI_KEY: undefined }, stdin: t.adminKey });
        assert.equal(fromStdin.status, 0, fromStdin.stderr);
        const onCommandLine = await cli(['authorities', 'list', '--key', t.adminKey], { env: { FLEET_PKI_KEY: undefined } });
        assert.equal(onCommandLine.status, 0);
        assert.match(onCommandLine.stderr, /warning: --key puts the API key in shell history/);
      });

      it('exit 3: an unreachable service, named by its URL', async () => {
        const url = `http://127.0.0.1:${await freePort()}`;
        const run = await cli(['authorities', 'list'], { env: { FLEET_PKI_URL: url } });
        assert.equal(run.status, 3);
        assert.match(run.stderr, new RegExp(`cannot reach the service at ${url.replace(/\./g, '\\.')} \\(ECONNREFUSED\\)`));
        assert.match(run.stderr, /hint: check --url \/ FLEET_PKI_URL/);
      });

      it('exit 3: a failing service (5xx) gives its code and a hint; a 429 is waited out and retried', async () => {
        let attempts = 0;
        const fake = http.createServer((req, res) => {
          const problem = (status: number, code: string, detail: string, headers: Record<string, string> = {}) => {
            res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
            res.end(JSON.stringify({ type: `urn:fleet-pki:problem:${code.toLowerCase()}`, title: 'x', status, detail, code }));
          };
          if (req.url?.startsWith('/v1/certificates')) return problem(503, 'NOT_READY', 'the database is not reachable');
          if (++attempts === 1) return problem(429, 'RATE_LIMITED', 'too many requests for this API key', { 'retry-after': '1' });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ items: [], nextCursor: null }));
        });
        await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
        const url = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
        try {
          const failing = await cli(['certificates', 'search'], { env: { FLEET_PKI_URL: url } });
          assert.equal(failing.status, 3);
          assert.match(failing.stderr, /^fleet-pki: error: the database is not reachable \(NOT_READY, HTTP 503\)$/m);
          assert.match(failing.stderr, /^hint: the service is starting or its database is unreachable/m);
          const limited = await cli(['rotations', 'status', '--json'], { env: { FLEET_PKI_URL: url } });
          assert.equal(limited.status, 0, limited.stderr);
          assert.deepEqual(JSON.parse(limited.stdout), []);
          assert.equal(attempts, 2);
        } finally {
          fake.close();
        }
      });

      it('documents the exit codes in --help', async () => {
        const help = await cli(['--help']);
        assert.equal(help.status, 0);
        assert.match(help.stdout, /Exit codes:\n\s+0\s+ok\n\s+1\s+usage/);
        assert.match((await cli(['audit', 'verify', '--help'])).stdout, /4\s+audit verify: the audit hash chain is broken/);
      });
    });

    describe('over HTTPS', { skip: driver === 'postgres' ? 'the transport does not depend on the driver' : false }, () => {
      let tls: TestApp;
      let caFile: string;

      before(async () => {
        const server = ssl.tlsServer();
        caFile = ssl.file('service-ca.pem', server.caPem);
        tls = await startTestApp(driver, { env: server.env });
      });
      after(async () => tls?.close());

      it('trusts a private CA given in NODE_EXTRA_CA_CERTS; without it, exit 3 with a hint that names the fix', async () => {
        const env = { FLEET_PKI_URL: tls.baseUrl, FLEET_PKI_KEY: tls.adminKey };
        const untrusted = await cli(['authorities', 'list'], { env });
        assert.equal(untrusted.status, 3);
        assert.match(untrusted.stderr, new RegExp(`cannot reach the service at ${tls.baseUrl.replace(/\./g, '\\.')} \\([A-Z_]*CERT[A-Z_]*\\)`));
        assert.match(untrusted.stderr, /hint: .*NODE_EXTRA_CA_CERTS/);
        const trusted = await cli(['authorities', 'list', '--json'], { env: { ...env, NODE_EXTRA_CA_CERTS: caFile } });
        assert.equal(trusted.status, 0, trusted.stderr);
        assert.deepEqual(JSON.parse(trusted.stdout), []);
        assert.ok(![untrusted, trusted].some((r) => `${r.stdout}${r.stderr}`.includes(tls.adminKey)));
      });
    });

    describe('audit', () => {
      it('verifies the chain (exit 0) and exports every event as NDJSON in order', async () => {
        const verify = await cli(['audit', 'verify']);
        assert.equal(verify.status, 0, verify.stderr);
        assert.match(verify.stdout, /^chain:\s+intact$/m);
        const result = await json(['audit', 'verify']);
        assert.equal(result.ok, true);

        const exported = await cli(['audit', 'export', '--out', 'audit.ndjson']);
        assert.equal(exported.status, 0, exported.stderr);
        const lines = fs.readFileSync(ssl.file('audit.ndjson'), 'utf8').trimEnd().split('\n');
        assert.equal(lines.length, result.checked);
        const events = lines.map((l) => JSON.parse(l) as { seq: number; action: string });
        assert.deepEqual(events.map((e) => e.seq), [...events.map((e) => e.seq)].sort((x, y) => x - y));
        assert.match(exported.stdout, new RegExp(`${lines.length} audit event\\(s\\) written to audit\\.ndjson`));

        const revocations = await cli(['audit', 'export', '--action', 'certificate.revoked']);
        const revokedEvents = revocations.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
        assert.equal(revokedEvents.length, events.filter((e) => e.action === 'certificate.revoked').length);
        assert.ok(revokedEvents.length >= 8, "one single and six bulk revocations, the claim's certificate, and the lot's");
        assert.ok(revokedEvents.every((e: { action: string }) => e.action === 'certificate.revoked'));
      });

      it('exit 4: audit verify names the first broken event when a row was changed in the database', async () => {
        const db = t.app.get(DataSource);
        if (driver === 'postgres') await db.query('DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events');
        else await db.query('DROP TRIGGER IF EXISTS audit_events_no_update');
        await db.query(`UPDATE audit_events SET details = '{"forged":true}' WHERE seq = 3`);
        const run = await cli(['audit', 'verify']);
        assert.equal(run.status, 4);
        assert.match(run.stdout, /^chain:\s+BROKEN$/m);
        assert.match(run.stderr, /the audit chain is broken at event 3/);
      });
    });
  });
}
