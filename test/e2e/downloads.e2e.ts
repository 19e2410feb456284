import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Response } from 'supertest';
import { CapturedOutput } from '../support/captured-output';
import { OpenSslWorkspace } from '../support/openssl';
import { stationToken } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/** supertest body parser: a file stays a Buffer; a JSON answer (a problem) is parsed, as the contract check wants. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function fileOrJson(res: any, done: (err: Error | null, body: unknown) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => {
    const body = Buffer.concat(chunks);
    done(null, /^application\/(problem\+)?json/.test(String(res.headers['content-type'])) ? JSON.parse(body.toString()) : body);
  });
}

/** The block of docs/downloads.md that shows the downloads with curl and openssl, exactly as a reader copies it. */
function docsScript(): string {
  const docs = fs.readFileSync(path.resolve(__dirname, '../../../docs/downloads.md'), 'utf8');
  const match = /<!-- downloads:begin -->\s*```bash\n([\s\S]*?)```\s*<!-- downloads:end -->/.exec(docs);
  assert.ok(match, 'docs/downloads.md has a downloads block');
  return match[1];
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g;

/**
 * Downloads in every format, each opened by the openssl CLI: an authority's certificate and chain (DER, PEM,
 * certs-only PKCS #7), a certificate and its chain (DER, PEM, PKCS #7), and a claim's generated key as PKCS #12
 * (POST /v1/claims?format=p12), whose password reaches no log and no audit event. docs/downloads.md.
 */
for (const { driver, skip } of drivers())
  describe(`downloads: PEM, DER, PKCS #7, PKCS #12 (${driver})`, { skip }, () => {
    let t: TestApp;
    const ssl = new OpenSslWorkspace();
    let root: Body;
    let policy: Body;
    let issuing: Body;
    let claimCa: Body;
    let device: Body;
    let auditorKey: string;
    const passwords: string[] = [];
    let logged: CapturedOutput;

    before(async () => {
      // Everything the service logs (at debug): the PKCS #12 passwords must not be in it.
      logged = new CapturedOutput();
      t = await startTestApp(driver, { env: { LOG_LEVEL: 'debug' } });
      root = await admin('/v1/authorities', { name: 'Root', type: 'root', pathLength: 2, subject: { commonName: 'Downloads Root' } });
      policy = await admin('/v1/authorities', { name: 'Policy', type: 'intermediate', parentId: root.id, pathLength: 1, allowLeafIssuance: false, subject: { commonName: 'Downloads Policy CA' } });
      issuing = await admin('/v1/authorities', { name: 'Issuing', type: 'intermediate', parentId: policy.id, pathLength: 0, subject: { commonName: 'Downloads Issuing CA' } });
      claimCa = await admin('/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Downloads Claims CA' } });
      device = await admin('/v1/certificates', { authorityId: issuing.id, csr: ssl.newCsr('ec:P-256', '/CN=dl-thing-1').csrPem, profile: 'device', thingName: 'dl-thing-1' });
      auditorKey = (await admin('/v1/api-keys', { name: 'downloads auditor', role: 'auditor' })).key;
    });
    after(async () => {
      await t?.close();
      logged.restore();
      ssl.cleanup();
    });

    async function admin(path: string, body: object): Promise<Body> {
      const res = await t.http().post(path).set(bearer(t.adminKey)).send(body);
      assert.equal(res.status, 201, `${path}: ${res.text}`);
      return res.body;
    }

    function download(path: string, query: Record<string, string>, key: string | null = t.adminKey) {
      const req = t.http().get(path).query(query).buffer(true).parse(fileOrJson);
      return key ? req.set(bearer(key)) : req;
    }

    /** `openssl pkcs7 -inform DER -print_certs`: the certificates in order, as PEM, with their subjects' CNs. */
    function printPkcs7(der: Buffer): { subjects: string[]; pems: string[] } {
      const printed = ssl.run(['pkcs7', '-inform', 'DER', '-in', ssl.file(`${randomUUID()}.p7b`, der), '-print_certs']);
      assert.equal(printed.status, 0, printed.output);
      return { subjects: [...printed.output.matchAll(/^subject=.*CN\s*=\s*([^,\n]+)/gm)].map((m) => m[1].trim()), pems: printed.output.match(PEM_BLOCK) ?? [] };
    }

    /** `openssl pkcs12 -nodes` with OpenSSL 3's defaults (no -legacy). */
    function openPkcs12(der: Buffer, password: string, extra: string[] = []): { status: number; output: string } {
      return ssl.run(['pkcs12', '-in', ssl.file(`${randomUUID()}.p12`, der), '-passin', `pass:${password}`, '-nodes', ...extra]);
    }

    function opensslPublicKey(args: string[], pem: string): string {
      const out = ssl.run([...args, '-in', ssl.file(`${randomUUID()}.pem`, pem)]);
      assert.equal(out.status, 0, out.output);
      return out.output;
    }

    function assertRefused(res: Response, status: number, code: string, detail: RegExp): void {
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.body.code, code);
      assert.match(`${res.body.detail} ${(res.body.errors ?? []).join(' ')}`, detail);
    }

    describe('GET /v1/authorities/{id}/certificate', () => {
      it('answers DER by default, as the AIA caIssuers URL did, and with format=der as a .der attachment', async () => {
        for (const query of [{}, { format: 'der' }] as Record<string, string>[]) {
          const res = await download(`/v1/authorities/${issuing.id}/certificate`, query, null);
          assert.equal(res.status, 200);
          assert.equal(res.headers['content-type'], 'application/pkix-cert');
          assert.equal(res.headers['cache-control'], 'public, max-age=3600');
          const parsed = ssl.run(['x509', '-inform', 'DER', '-in', ssl.file(`${randomUUID()}.der`, res.body), '-noout', '-subject']);
          assert.match(parsed.output, /CN\s*=\s*Downloads Issuing CA/);
          if ('format' in query) assert.equal(res.headers['content-disposition'], `attachment; filename="${issuing.serial}.der"`);
          else assert.equal(res.headers['content-disposition'], undefined);
        }
      });

      it('answers format=pem with the CA certificate and each parent up to the root, publicly', async () => {
        const res = await download(`/v1/authorities/${issuing.id}/certificate`, { format: 'pem' }, null);
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], 'application/x-pem-file');
        assert.equal(res.headers['content-disposition'], `attachment; filename="${issuing.serial}.pem"`);
        assert.equal(res.body.toString(), issuing.certificatePem + policy.certificatePem + root.certificatePem);
        assert.equal(res.body.toString(), issuing.chainPem);
      });

      it('answers format=p7b with a certs-only PKCS #7 that openssl reads, the CA first and the root last', async () => {
        const res = await download(`/v1/authorities/${issuing.id}/certificate`, { format: 'p7b' }, null);
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
        assert.equal(res.headers['content-disposition'], `attachment; filename="${issuing.serial}.p7b"`);
        const { subjects, pems } = printPkcs7(res.body);
        assert.deepEqual(subjects, ['Downloads Issuing CA', 'Downloads Policy CA', 'Downloads Root']);
        assert.deepEqual(pems, [issuing.certificatePem, policy.certificatePem, root.certificatePem]);
        // A root's chain is itself.
        const rootP7 = await download(`/v1/authorities/${root.id}/certificate`, { format: 'p7b' }, null);
        assert.deepEqual(printPkcs7(rootP7.body).subjects, ['Downloads Root']);
      });

      it('refuses an unknown format with a 400 naming the allowed ones', async () => {
        for (const format of ['p12', 'xml', 'PEM', '']) {
          assertRefused(await download(`/v1/authorities/${issuing.id}/certificate`, { format }, null), 400, 'VALIDATION_FAILED', /format must be one of the following values: pem, der, p7b/);
        }
        assertRefused(await download(`/v1/authorities/${randomUUID()}/certificate`, { format: 'p7b' }, null), 404, 'AUTHORITY_NOT_FOUND', /no authority|not found/i);
      });
    });

    describe('GET /v1/certificates/{id}', () => {
      it('answers format=p7b with the certificate and its chain in order, which openssl verify -x509_strict accepts', async () => {
        const res = await download(`/v1/certificates/${device.id}`, { format: 'p7b' });
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
        assert.equal(res.headers['content-disposition'], `attachment; filename="${device.serial}.p7b"`);
        const { subjects, pems } = printPkcs7(res.body);
        assert.deepEqual(subjects, ['dl-thing-1', 'Downloads Issuing CA', 'Downloads Policy CA', 'Downloads Root']);
        assert.equal(pems[0], device.certificatePem);
        const [leaf, ...chain] = pems;
        const verified = ssl.verify({ rootPem: chain[chain.length - 1], intermediatesPem: chain.slice(0, -1).join(''), leafPem: leaf });
        assert.ok(verified.ok, verified.output);
        // Against the root the operator holds (not the one in the file), too.
        assert.ok(ssl.verify({ rootPem: root.certificatePem, intermediatesPem: chain.slice(0, -1).join(''), leafPem: leaf }).ok);
      });

      it('answers format=der with the certificate alone and format=pem with the certificate then its chain', async () => {
        const der = await download(`/v1/certificates/${device.id}`, { format: 'der' });
        assert.equal(der.status, 200);
        assert.equal(der.headers['content-type'], 'application/pkix-cert');
        assert.equal(der.headers['content-disposition'], `attachment; filename="${device.serial}.der"`);
        const asPem = ssl.run(['x509', '-inform', 'DER', '-in', ssl.file(`${randomUUID()}.der`, der.body)]);
        assert.equal(asPem.status, 0, asPem.output);
        assert.equal(asPem.output, device.certificatePem);

        const pem = await download(`/v1/certificates/${device.id}`, { format: 'pem' });
        assert.equal(pem.headers['content-type'], 'application/x-pem-file');
        assert.equal(pem.body.toString(), device.certificatePem + device.chainPem);
        assert.deepEqual(pem.body.toString().match(PEM_BLOCK), [device.certificatePem, issuing.certificatePem, policy.certificatePem, root.certificatePem]);

        const json = await t.http().get(`/v1/certificates/${device.id}`).query({ format: 'json' }).set(bearer(t.adminKey));
        assert.equal(json.status, 200);
        assert.equal(json.body.certificatePem, device.certificatePem);
      });

      it('keeps the route’s access rules: any role may download, nobody without a key', async () => {
        const auditor = await download(`/v1/certificates/${device.id}`, { format: 'p7b' }, auditorKey);
        assert.equal(auditor.status, 200);
        assertRefused(await download(`/v1/certificates/${device.id}`, { format: 'p7b' }, null), 401, 'UNAUTHENTICATED', /./);
      });

      it('refuses an unknown format with a 400 naming the allowed ones', async () => {
        for (const format of ['p12', 'cer', 'P7B']) {
          assertRefused(await download(`/v1/certificates/${device.id}`, { format }), 400, 'VALIDATION_FAILED', /format must be one of the following values: json, pem, der, p7b/);
        }
      });
    });

    describe('POST /v1/claims?format=p12', () => {
      const claimBody = (extra: object = {}) => ({
        name: 'p12 claim',
        factory: 'Downloads factory',
        claimAuthorityId: claimCa.id,
        deviceAuthorityId: issuing.id,
        maxDevices: 5,
        notAfter: new Date(Date.now() + 86_400_000).toISOString(),
        thingNameTemplate: 'dl-{serial}',
        claimCertificate: { generateKey: true },
        ...extra,
      });

      function createP12(body: object, format: string | null = 'p12', key = t.adminKey) {
        const req = t.http().post('/v1/claims').set(bearer(key)).buffer(true).parse(fileOrJson);
        return (format === null ? req : req.query({ format })).send(body);
      }

      /** Claims and certificates so far: a refusal must add neither. */
      async function counts(): Promise<{ claims: number; certificates: number }> {
        const [claims, certificates] = await Promise.all(['/v1/claims', '/v1/certificates'].map((path) => t.http().get(path).query({ limit: 500 }).set(bearer(t.adminKey))));
        return { claims: claims.body.items.length, certificates: certificates.body.items.length };
      }

      async function auditOf(claimId: string): Promise<{ action: string; details: Record<string, unknown> }[]> {
        const res = await t.http().get('/v1/audit').query({ limit: 500 }).set(bearer(t.adminKey));
        return (res.body.items as { action: string; target: { id: string }; details: Record<string, unknown> }[]).filter(
          (event) => event.target.id === claimId || event.details.claimId === claimId,
        );
      }

      for (const keySpec of ['EC_P256', 'EC_P384', 'RSA_2048'] as const) {
        it(`answers a PKCS #12 that openssl opens, with the ${keySpec} key of the claim certificate and its chain`, async () => {
          const password = `p12 pw ${keySpec} ${randomUUID()}`;
          passwords.push(password);
          const res = await createP12(claimBody({ claimCertificate: { generateKey: true, keySpec }, pkcs12Password: password }));
          assert.equal(res.status, 201, JSON.stringify(res.body));
          assert.equal(res.headers['content-type'], 'application/x-pkcs12');
          const claimId = res.headers['x-claim-id'];
          assert.match(claimId, /^[0-9a-f-]{36}$/);
          assert.equal(res.headers.location, `/v1/claims/${claimId}`);
          assert.equal(res.headers['content-disposition'], `attachment; filename="claim-${claimId}.p12"`);
          assert.equal(res.headers['cache-control'], 'no-store');

          const claim = (await t.http().get(`/v1/claims/${claimId}`).set(bearer(t.adminKey))).body;
          const claimCertificate = (await t.http().get(`/v1/certificates/${claim.claimCertificateId}`).set(bearer(t.adminKey))).body;
          const opened = openPkcs12(res.body, password);
          assert.equal(opened.status, 0, opened.output);
          assert.deepEqual(opened.output.match(PEM_BLOCK), [claimCertificate.certificatePem, claimCa.certificatePem, root.certificatePem]);
          const keyPem = opened.output.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/)![0];
          assert.equal(opensslPublicKey(['pkey', '-pubout'], keyPem), opensslPublicKey(['x509', '-pubkey', '-noout'], claimCertificate.certificatePem));
          assert.notEqual(openPkcs12(res.body, `${password}x`).status, 0, 'a wrong password does not open it');
        });
      }

      it('makes the same claim and audit events as the JSON answer, and its claim certificate authenticates an exchange', async () => {
        const password = `exchange-${randomUUID()}`;
        passwords.push(password);
        const res = await createP12(claimBody({ pkcs12Password: password }));
        assert.equal(res.status, 201);
        const p12ClaimId = res.headers['x-claim-id'];
        const json = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send(claimBody());
        assert.equal(json.status, 201);

        const [viaP12, viaJson] = await Promise.all([p12ClaimId, json.body.id].map(auditOf));
        const shape = (events: { action: string; details: Record<string, unknown> }[]) => events.map((e) => [e.action, Object.keys(e.details).sort(), e.details.keyGenerated]);
        assert.deepEqual(shape(viaP12), shape(viaJson));
        assert.deepEqual(viaP12.map((e) => e.action).sort(), ['certificate.issued', 'claim.created']);
        // The same claim but for what differs between any two claims (ids, times).
        const comparable = async (id: string) => {
          const { id: _id, claimCertificateId: _cert, createdAt: _created, notBefore: _from, notAfter: _until, ...rest } = (await t.http().get(`/v1/claims/${id}`).set(bearer(t.adminKey))).body;
          return rest;
        };
        assert.deepEqual(await comparable(p12ClaimId), await comparable(json.body.id));

        // The station holds only the .p12: its key and certificate authenticate the exchange.
        const opened = openPkcs12(res.body, password, ['-clcerts']).output;
        const station = {
          claimId: p12ClaimId,
          certificatePem: opened.match(PEM_BLOCK)![0],
          privateKey: createPrivateKey(opened.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/)![0]),
          alg: 'ES256' as const,
        };
        const exchanged = await t
          .http()
          .post('/v1/provisioning/exchange')
          .set('Authorization', `Bearer ${stationToken(t, station)}`)
          .send({ deviceSerial: 'P12SN1', csr: ssl.newCsr('ec:P-256', '/CN=P12SN1').csrPem });
        assert.equal(exchanged.status, 201, exchanged.text);
        assert.equal(exchanged.body.claimId, p12ClaimId);
        assert.ok(ssl.verify({ rootPem: root.certificatePem, intermediatesPem: policy.certificatePem + issuing.certificatePem, leafPem: exchanged.body.certificatePem }).ok);
      });

      it('refuses a missing, short or misplaced password, a CSR claim and an unknown format, creating nothing', async () => {
        const before = await counts();
        const short = 'short12';
        const cases: [object, string | null, RegExp][] = [
          [claimBody(), 'p12', /pkcs12Password: a password is required/],
          [claimBody({ pkcs12Password: '' }), 'p12', /pkcs12Password must be longer than or equal to 8 characters/],
          [claimBody({ pkcs12Password: short }), 'p12', /pkcs12Password must be longer than or equal to 8 characters/],
          [claimBody({ pkcs12Password: 'x'.repeat(129) }), 'p12', /pkcs12Password must be shorter than or equal to 128 characters/],
          [claimBody({ pkcs12Password: 'line\nbreak-password' }), 'p12', /pkcs12Password must not contain control characters/],
          [claimBody({ pkcs12Password: 'long enough password' }), null, /pkcs12Password applies only with \?format=p12/],
          [claimBody({ pkcs12Password: 'long enough password' }), 'json', /pkcs12Password applies only with \?format=p12/],
          [claimBody({ pkcs12Password: 'long enough password', claimCertificate: { csr: ssl.newCsr('ec:P-256', '/CN=claim').csrPem } }), 'p12', /format=p12 needs claimCertificate.generateKey/],
          [claimBody({ pkcs12Password: 'long enough password' }), 'pfx', /format must be one of the following values: json, p12/],
        ];
        for (const [body, format, detail] of cases) {
          const res = await createP12(body, format);
          assert.equal(res.status, 400, `${format} ${JSON.stringify(body)}: ${res.status}`);
          assert.equal(res.body.code, 'VALIDATION_FAILED');
          assert.match(`${res.body.detail} ${(res.body.errors ?? []).join(' ')}`, detail);
          assert.ok(!JSON.stringify(res.body).includes(short) && !JSON.stringify(res.body).includes('long enough password'), 'a refusal never echoes the password');
        }
        assert.deepEqual(await counts(), before);
      });

      it('keeps the route’s access rules: only an admin creates claims', async () => {
        const res = await createP12(claimBody({ pkcs12Password: 'auditor-password' }), 'p12', auditorKey);
        assert.equal(res.status, 403);
      });

      it('works as docs/downloads.md shows it, with curl and openssl only', async () => {
        const password = `docs-${randomUUID()}`;
        passwords.push(password);
        const scratch = fs.mkdtempSync(path.join(ssl.dir, 'docs-'));
        // Asynchronously: the service answers the script's curl calls from this very process.
        const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn('bash', ['-euo', 'pipefail', '-c', docsScript()], {
            cwd: scratch,
            env: { PATH: process.env.PATH, FLEET_PKI_URL: t.baseUrl, FLEET_PKI_KEY: t.adminKey, P12_PASS: password },
            stdio: ['ignore', 'pipe', 'pipe'],
            timeout: 60_000,
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
          child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
          child.on('close', (status) => resolve({ status, stdout, stderr }));
        });
        const output = `${result.stdout}${result.stderr}`;
        assert.equal(result.status, 0, output);
        assert.deepEqual([...output.matchAll(/^subject=.*CN\s*=\s*(.+)$/gm)].map((m) => m[1]).slice(0, 2), ['Acme Device CA', 'Acme Root CA']);
        assert.match(output, /^p7-1\.pem: OK$/m);
        assert.match(output, /^subject=CN\s*=\s*sensor-0001$/m);
        assert.match(output, /^x-claim-id: [0-9a-f-]{36}/im);
        assert.match(output, /MAC: sha256, Iteration 600000/);
        assert.match(output, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256/);
        assert.match(output, /^claim\.key matches claim\.pem$/m);
        assert.match(output, /^claim\.pem: OK$/m);
        assert.ok(!output.includes(password), 'the password is on no command line and in no output');
      });

      it('lets no password reach a log line or an audit event', async () => {
        assert.ok(passwords.length >= 4, 'the PKCS #12 tests ran first');
        const audit: unknown[] = [];
        let cursor: string | null = null;
        do {
          const page: Response = await t.http().get('/v1/audit').query({ limit: 500, ...(cursor ? { cursor } : {}) }).set(bearer(t.adminKey));
          audit.push(...page.body.items);
          cursor = page.body.nextCursor;
        } while (cursor);
        const auditText = JSON.stringify(audit);
        assert.match(auditText, /claim\.created/);
        assert.match(logged.text, /\S/, 'the service logged something at debug level');
        for (const password of passwords) {
          assert.ok(!logged.text.includes(password), 'a password is in the log');
          assert.ok(!auditText.includes(password), 'a password is in the audit log');
        }
      });
    });
  });
