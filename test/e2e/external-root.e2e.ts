import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { KmsStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/**
 * Intermediates whose certificate an external, offline root signs (docs/external-roots.md): the service makes the key
 * (KMS stand-in or local store) and a CSR; the root — made here by the openssl CLI, as an operator would — signs it
 * with `openssl x509 -req`; the upload is validated and every wrong one refused with its own code.
 */

/** Extension sections for openssl, as an operator writes them (`-extfile ext.cnf -extensions <section>`). */
const EXTENSIONS = `
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[root_pathlen0]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[policy_ca]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[not_a_ca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[no_key_cert_sign]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,digitalSignature,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[no_crl_sign]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

interface CaFiles {
  cert: string;
  key: string;
  pem: string;
}

class OfflineCa {
  private seq = 0;
  readonly ext: string;

  constructor(private readonly ssl: OpenSslWorkspace) {
    this.ext = ssl.file('ext.cnf', EXTENSIONS);
  }

  private ok(args: string[]): string {
    const result = this.ssl.run(args);
    assert.equal(result.status, 0, `openssl ${args.join(' ')}: ${result.output}`);
    return result.output;
  }

  private name(base: string): string {
    return `${base}-${++this.seq}`;
  }

  /** `openssl req -x509`: a self-signed root. */
  root(subject: string, section = 'root'): CaFiles {
    const n = this.name('root');
    this.ok(['req', '-x509', '-config', this.ext, '-extensions', section, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.pem`, '-subj', subject, '-days', '3650', '-sha384']);
    return this.files(n);
  }

  /** `openssl x509 -req`: signs a CSR with `ca` under an extension section. */
  sign(ca: CaFiles, csrPem: string, section: string, extra: string[] = []): string {
    const n = this.name('signed');
    this.ok(['x509', '-req', '-in', this.ssl.file(`${n}.csr`, csrPem), '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${Math.floor(Math.random() * 2 ** 48).toString(16)}01`, '-days', '1825', '-sha256', '-extfile', this.ext, '-extensions', section, '-out', `${n}.pem`, ...extra]);
    return fs.readFileSync(this.ssl.file(`${n}.pem`), 'utf8');
  }

  /** An intermediate of the external hierarchy itself (key made by openssl), e.g. a policy CA under the root. */
  intermediate(ca: CaFiles, subject: string, section: string): CaFiles {
    const n = this.name('ext-int');
    this.ok(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${n}.key`, '-subj', subject, '-out', `${n}.csr`]);
    fs.writeFileSync(this.ssl.file(`${n}.pem`), this.sign(ca, fs.readFileSync(this.ssl.file(`${n}.csr`), 'utf8'), section));
    return this.files(n);
  }

  /**
   * `openssl ca` with explicit dates: openssl 3.0's `x509 -req` cannot backdate (3.5 has `-not_before`), `ca` can
   * (`-startdate`/`-enddate`).
   */
  signWithDates(ca: CaFiles, csrPem: string, section: string, startDate: string, endDate: string): string {
    const n = this.name('dated');
    const dir = this.ssl.file(`${n}-db`);
    fs.mkdirSync(dir);
    fs.writeFileSync(`${dir}/index.txt`, '');
    const config = this.ssl.file(
      `${n}.cnf`,
      `[ca]\ndefault_ca = dated\n[dated]\ndatabase = ${dir}/index.txt\nnew_certs_dir = ${dir}\nserial = ${dir}/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n` +
        EXTENSIONS.replace(/\[req\][\s\S]*?\[root\]/, '[root]'),
    );
    fs.writeFileSync(`${dir}/serial`, '1000\n');
    this.ok(['ca', '-batch', '-config', config, '-cert', ca.cert, '-keyfile', ca.key, '-in', this.ssl.file(`${n}.csr`, csrPem), '-out', `${n}.pem`, '-extensions', section, '-startdate', startDate, '-enddate', endDate, '-notext', '-preserveDN']);
    return fs.readFileSync(this.ssl.file(`${n}.pem`), 'utf8');
  }

  /** A CSR for a key openssl makes (not the authority's). */
  foreignCsr(subject: string): string {
    return this.ssl.newCsr('ec:P-256', subject).csrPem;
  }

  private files(n: string): CaFiles {
    return { cert: this.ssl.file(`${n}.pem`), key: this.ssl.file(`${n}.key`), pem: fs.readFileSync(this.ssl.file(`${n}.pem`), 'utf8') };
  }
}

function opensslAsync(ssl: OpenSslWorkspace, args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { cwd: ssl.dir }, (err, stdout, stderr) => {
      resolve({ status: err ? -1 : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** The operator's block of docs/external-roots.md, exactly as written there. */
function operatorScript(): string {
  const doc = fs.readFileSync(path.resolve(__dirname, '../../../docs/external-roots.md'), 'utf8');
  const match = /<!-- external-roots:begin -->\s*```bash\n([\s\S]*?)```\s*<!-- external-roots:end -->/.exec(doc);
  assert.ok(match, 'docs/external-roots.md has the operator block');
  return match[1];
}

/** Runs a bash script without blocking the event loop (the service answers from this process). */
function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, output });
    });
  });
}

interface Authority {
  id: string;
  status: string;
  csrPem: string;
  certificatePem: string | null;
  chainPem: string | null;
  serial: string | null;
  fingerprint: string | null;
  notBefore: string | null;
  notAfter: string | null;
  pathLength: number | null;
  externalRoot: boolean;
}

const SUBJECT = { commonName: 'Acme Issuing CA', organization: 'Acme', country: 'US' };
const SUBJECT_ARG = '/C=US/O=Acme/CN=Acme Issuing CA';

for (const { driver, skip } of drivers()) {
  describe(`intermediates under an external root (${driver})`, { skip }, () => {
    let t: TestApp;
    let kms: KmsStandIn;
    const ssl = new OpenSslWorkspace();
    const offline = new OfflineCa(ssl);
    let root: CaFiles;

    before(async () => {
      kms = await new KmsStandIn().start();
      t = await startTestApp(driver, { kms });
      root = offline.root('/O=Acme/CN=Acme Offline Root');
    });
    after(async () => {
      await t?.close();
      await kms?.stop();
      ssl.cleanup();
    });

    const admin = () => bearer(t.adminKey);

    async function createPending(extra: Record<string, unknown> = {}): Promise<Authority> {
      const res = await t.http().post('/v1/authorities').set(admin()).send({
        type: 'intermediate', parent: 'external', name: 'Acme Issuing CA', keyBackend: 'local', subject: SUBJECT, ...extra,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    }

    const upload = (id: string, certificatePem: string, chainPem: string) =>
      t.http().post(`/v1/authorities/${id}/certificate`).set(admin()).send({ certificatePem, chainPem });

    function issueDevice(authorityId: string, thingName: string) {
      return t.http().post('/v1/certificates').set(admin()).send({ authorityId, csr: ssl.newCsr('ec:P-256', `/CN=${thingName}`).csrPem, profile: 'device', thingName });
    }

    async function certificateCount(): Promise<number> {
      const [row] = await t.app.get(DataSource).query('SELECT COUNT(*) AS n FROM certificates');
      return Number(row.n);
    }

    for (const [backend, keySpec] of [['aws-kms', 'EC_P256'], ['local', 'RSA_2048']] as const) {
      it(`an intermediate with a ${backend} key, signed by an openssl root, issues devices that openssl verifies against that root`, async () => {
        const pending = await createPending({ keyBackend: backend, keySpec, name: `external ${backend}`, pathLength: 0 });
        assert.equal(pending.status, 'pending');
        assert.equal(pending.externalRoot, true);
        assert.equal(pending.certificatePem, null);
        assert.equal(pending.serial, null);
        // The CSR is signed by the key in its backend: openssl checks the proof of possession and reads what it asks.
        const csrFile = ssl.file(`${backend}.csr`, pending.csrPem);
        const checked = ssl.run(['req', '-in', csrFile, '-verify', '-noout', '-text']);
        assert.equal(checked.status, 0, checked.output);
        assert.match(checked.output, /verify OK/);
        assert.match(checked.output, /Subject: C\s?=\s?US, O\s?=\s?Acme, CN\s?=\s?Acme Issuing CA/);
        assert.match(checked.output, /CA:TRUE, pathlen:0/);
        if (backend === 'aws-kms') {
          // The public key in the CSR is the KMS key's.
          const arn = (await t.http().get(`/v1/authorities/${pending.id}`).set(admin())).body.kmsKeyArn as string;
          assert.match(arn, /^arn:aws:kms:/);
        }

        // Pending: listed with its status, issues nothing, has no CRL.
        const list = await t.http().get('/v1/authorities').set(admin());
        assert.equal(list.body.items.find((a: Authority) => a.id === pending.id)?.status, 'pending');
        const refused = await issueDevice(pending.id, `early-${backend}`);
        assert.equal(refused.status, 409, JSON.stringify(refused.body));
        assert.equal(refused.body.code, 'AUTHORITY_PENDING');
        const crl = await t.http().get(`/v1/authorities/${pending.id}/crl`);
        assert.equal(crl.status, 409);
        assert.equal(crl.body.code, 'AUTHORITY_PENDING');
        for (const format of ['', '?format=pem', '?format=p7b']) {
          const download = await t.http().get(`/v1/authorities/${pending.id}/certificate${format}`);
          assert.equal(download.status, 409, `certificate download${format} of a pending authority`);
          assert.equal(download.body.code, 'AUTHORITY_PENDING');
        }

        // The local-key case goes through a two-level external hierarchy: root → policy CA → ours; chainPem in any order.
        const policyCa = backend === 'local' ? offline.intermediate(root, '/O=Acme/CN=Acme Offline Policy CA', 'policy_ca') : undefined;
        const signed = offline.sign(policyCa ?? root, pending.csrPem, 'intermediate');
        const externalChain = policyCa ? root.pem + policyCa.pem : root.pem;
        const res = await upload(pending.id, signed, externalChain);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const active: Authority = res.body;
        assert.equal(active.status, 'active');
        assert.equal(active.certificatePem, signed.replace(/\r/g, ''));
        const expectedChain = [signed, ...(policyCa ? [policyCa.pem] : []), root.pem].map((pem) => pem.trim()).join('\n');
        assert.equal(active.chainPem!.trim(), expectedChain, 'chain: ours, then the external issuers up to and including the root');
        const fingerprint = ssl.run(['x509', '-in', ssl.file(`${backend}-signed.pem`, signed), '-noout', '-fingerprint', '-sha256']).output;
        assert.equal(active.fingerprint, fingerprint.split('=')[1].replace(/:/g, '').trim().toLowerCase());
        assert.match(active.serial!, /^[0-9a-f]+$/);
        assert.ok(active.notBefore && active.notAfter);
        assert.equal(active.pathLength, 0);

        // A device certificate: openssl -x509_strict accepts it against the offline root alone.
        const device = await issueDevice(active.id, `device-${backend}`);
        assert.equal(device.status, 201, JSON.stringify(device.body));
        const untrusted = active.chainPem!.replace(root.pem.trim(), '');
        const verified = ssl.verify({ rootPem: root.pem, intermediatesPem: untrusted, leafPem: device.body.certificatePem });
        assert.ok(verified.ok, verified.output);
        assert.equal(device.body.chainPem.trim(), expectedChain, 'the device chain is the authority chain, external root included');
        // Its AKI is the SKI of the uploaded certificate.
        const ski = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(ssl.text(signed))![1];
        assert.match(ssl.text(device.body.certificatePem), new RegExp(`Authority Key Identifier:\\s*\\n\\s*(keyid:)?${ski}`));

        // Revocation works as for any intermediate: the CRL (signed by this key) and OCSP, both checked by openssl.
        assert.equal((await t.http().post(`/v1/certificates/${device.body.id}/revoke`).set(admin()).send({ reason: 'keyCompromise' })).status, 200);
        const crlRes = await t.http().get(`/v1/authorities/${active.id}/crl`).buffer(true).parse((r, done) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => done(null, Buffer.concat(chunks)));
        });
        assert.equal(crlRes.status, 200);
        const crlPem = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file(`${backend}.crl`, crlRes.body as Buffer)]).output;
        const leafFile = ssl.file(`${backend}-leaf.pem`, device.body.certificatePem);
        const crlCheck = ssl.run(['verify', '-x509_strict', '-crl_check', '-CAfile', root.cert, '-untrusted', ssl.file(`${backend}-untrusted.pem`, untrusted), '-CRLfile', ssl.file(`${backend}-crl.pem`, crlPem), leafFile]);
        assert.notEqual(crlCheck.status, 0);
        assert.match(crlCheck.output, /certificate revoked/);
        const ocsp = await opensslAsync(ssl, ['ocsp', '-issuer', ssl.file(`${backend}-issuer.pem`, signed), '-cert', leafFile, '-url', `${t.baseUrl}/ocsp`, '-CAfile', ssl.file(`${backend}-chain.pem`, active.chainPem!)]);
        assert.equal(ocsp.status, 0, ocsp.output);
        assert.match(ocsp.output, /Response verify OK/);
        assert.match(ocsp.output, /: revoked/);

        // The upload is audited, without key material; a second upload is refused.
        const events: { details: string }[] = await t.app.get(DataSource).query(
          `SELECT details FROM audit_events WHERE action = 'authority.certificate_uploaded' AND target_id = '${active.id}'`,
        );
        assert.equal(events.length, 1, 'one authority.certificate_uploaded event');
        const details = typeof events[0].details === 'string' ? JSON.parse(events[0].details) : events[0].details;
        assert.equal(details.fingerprint, active.fingerprint);
        assert.equal(details.rootFingerprint.length, 64);
        assert.doesNotMatch(JSON.stringify(details), /BEGIN|PRIVATE|MII/);
        const chainCheck = await t.http().get('/v1/audit/verify').set(admin());
        assert.equal(chainCheck.body.ok, true, JSON.stringify(chainCheck.body));
        const twice = await upload(active.id, signed, externalChain);
        assert.equal(twice.status, 409);
        assert.equal(twice.body.code, 'AUTHORITY_NOT_PENDING');
      });
    }

    it('refuses each wrong upload with its own code; the authority stays pending and nothing is issued', async () => {
      const pending = await createPending({ name: 'refusals', pathLength: 0 });
      const issuedBefore = await certificateCount();
      const policyCa = offline.intermediate(root, '/O=Acme/CN=Acme Offline Policy CA 2', 'policy_ca');
      const impostor = offline.root('/O=Acme/CN=Acme Offline Root');
      const stranger = offline.root('/O=Elsewhere/CN=Another Root');
      const narrowRoot = offline.root('/O=Acme/CN=Acme Narrow Root', 'root_pathlen0');
      const thirdRoot = offline.root('/O=Acme/CN=Acme Root 3');
      const narrowPolicy = offline.intermediate(thirdRoot, '/O=Acme/CN=Acme Leaf-only Policy CA', 'intermediate');
      const ok = (section = 'intermediate') => offline.sign(root, pending.csrPem, section);

      const cases: [string, () => [string, string], string][] = [
        ['a certificate for another key (a CSR signed by another key)', () => [offline.sign(root, offline.foreignCsr(SUBJECT_ARG), 'intermediate'), root.pem], 'UPLOADED_CERTIFICATE_KEY_MISMATCH'],
        ['a certificate that is not a CA (CA:FALSE)', () => [ok('not_a_ca'), root.pem], 'CHAIN_NOT_A_CA'],
        ['a certificate without keyUsage keyCertSign', () => [ok('no_key_cert_sign'), root.pem], 'CHAIN_KEY_CERT_SIGN_MISSING'],
        ['a certificate without keyUsage cRLSign', () => [ok('no_crl_sign'), root.pem], 'UPLOADED_CERTIFICATE_CRL_SIGN_MISSING'],
        ['an expired certificate', () => [offline.signWithDates(root, pending.csrPem, 'intermediate', '20200101000000Z', '20210101000000Z'), root.pem], 'CHAIN_CERTIFICATE_EXPIRED'],
        ['a certificate not valid yet', () => [offline.signWithDates(root, pending.csrPem, 'intermediate', '20400101000000Z', '20410101000000Z'), root.pem], 'CHAIN_CERTIFICATE_NOT_YET_VALID'],
        ['a certificate with another subject', () => [offline.sign(root, pending.csrPem, 'intermediate', ['-subj', '/C=US/O=Acme/CN=Someone Else']), root.pem], 'UPLOADED_CERTIFICATE_SUBJECT_MISMATCH'],
        ['a chain without the root', () => [offline.sign(policyCa, pending.csrPem, 'intermediate'), policyCa.pem], 'CHAIN_INCOMPLETE'],
        ['a chain with a root that did not sign it (another name)', () => [ok(), stranger.pem], 'CHAIN_INCOMPLETE'],
        ['a chain with a root of the same name that did not sign it', () => [ok(), impostor.pem], 'CHAIN_SIGNATURE_INVALID'],
        ['a root whose pathLen 0 forbids an intermediate', () => [offline.sign(narrowRoot, pending.csrPem, 'intermediate'), narrowRoot.pem], 'CHAIN_PATH_LENGTH_EXCEEDED'],
        ['an issuer CA with pathLen 0 above another CA', () => [offline.sign(narrowPolicy, pending.csrPem, 'intermediate'), narrowPolicy.pem + thirdRoot.pem], 'CHAIN_PATH_LENGTH_EXCEEDED'],
        ['a chain of more than 10 certificates', () => [ok(), root.pem.repeat(11)], 'CHAIN_TOO_LONG'],
        ['a certificate that is not PEM', () => ['not a certificate', root.pem], 'UPLOADED_CERTIFICATE_UNREADABLE'],
      ];
      for (const [name, make, code] of cases) {
        const [certificatePem, chainPem] = make();
        const res = await upload(pending.id, certificatePem, chainPem);
        assert.equal(res.status, 422, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, code, `${name}: ${res.body.detail}`);
        assert.match(res.headers['content-type'], /^application\/problem\+json/);
      }
      const still = await t.http().get(`/v1/authorities/${pending.id}`).set(admin());
      assert.equal(still.body.status, 'pending');
      assert.equal(still.body.certificatePem, null);
      assert.equal(await certificateCount(), issuedBefore, 'nothing issued');
      const refused = await issueDevice(pending.id, 'never');
      assert.equal(refused.body.code, 'AUTHORITY_PENDING');
      // After all the refusals the right certificate is still accepted.
      assert.equal((await upload(pending.id, ok(), root.pem)).status, 200);
    });

    it('runs the operator commands of docs/external-roots.md: the device verifies against the offline root', async () => {
      const dir = fs.mkdtempSync(path.join(ssl.dir, 'operator-'));
      const result = await bash(operatorScript(), dir, { FLEET_PKI_URL: t.baseUrl, FLEET_PKI_KEY: t.adminKey });
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /^pending$/m);
      assert.match(result.output, /verify OK/);
      assert.match(result.output, /^active$/m);
      assert.match(result.output, /^device\.pem: OK$/m);
    });

    it('refuses parent "external" together with parentId, on a root, and an upload to an authority of this service or to one disabled while pending', async () => {
      const bad = [
        { parentId: '00000000-0000-4000-8000-000000000000' },
        { type: 'root' },
      ];
      for (const extra of bad) {
        const res = await t.http().post('/v1/authorities').set(admin()).send({ type: 'intermediate', parent: 'external', name: 'x', subject: SUBJECT, ...extra });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.code, 'VALIDATION_FAILED');
      }
      const own = await t.http().post('/v1/authorities').set(admin()).send({ type: 'root', name: 'own root', subject: { commonName: 'Own Root' } });
      assert.equal(own.status, 201);
      assert.equal(own.body.externalRoot, false);
      assert.equal(own.body.csrPem, null);
      const res = await upload(own.body.id, own.body.certificatePem, own.body.certificatePem);
      assert.equal(res.status, 409);
      assert.equal(res.body.code, 'AUTHORITY_NOT_PENDING');

      // Disabled while pending: it keeps no certificate, has no CRL and takes no upload.
      const abandoned = await createPending({ name: 'abandoned' });
      const disabled = await t.http().post(`/v1/authorities/${abandoned.id}/disable`).set(admin());
      assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
      assert.equal(disabled.body.status, 'disabled');
      assert.equal(disabled.body.certificatePem, null);
      assert.equal((await t.http().get(`/v1/authorities/${abandoned.id}/crl`)).body.code, 'AUTHORITY_PENDING');
      const late = await upload(abandoned.id, offline.sign(root, abandoned.csrPem, 'intermediate'), root.pem);
      assert.equal(late.status, 409);
      assert.equal(late.body.code, 'AUTHORITY_NOT_PENDING');
    });
  });
}
