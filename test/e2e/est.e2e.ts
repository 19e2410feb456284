import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Response } from 'supertest';
import { OpenSslWorkspace } from '../support/openssl';
import { stationToken } from '../support/station';
import { contractError } from '../support/response-validator';
import { bearer, drivers, ManualClock, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];
const run = promisify(execFile);
const repositoryRoot = path.resolve(__dirname, '../../..');

/** A bash block of the README's EST section, between <!-- est:<name>:begin --> and <!-- est:<name>:end -->. */
function readmeBlock(name: string): string {
  const readme = fs.readFileSync(path.join(repositoryRoot, 'README.md'), 'utf8');
  const match = new RegExp(`<!-- est:${name}:begin -->\\s*\`\`\`bash\\n([\\s\\S]*?)\`\`\`\\s*<!-- est:${name}:end -->`).exec(readme);
  assert.ok(match, `README has the est:${name} block`);
  return match[1];
}
const DAY = 86_400_000;

/** What curl saw: status, headers (lower-case names) and the body as text. */
interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Where curl wrote the body (binary answers are read from here). */
  bodyFile: string;
}

/**
 * EST (RFC 7030) end to end, with curl and openssl alone on the client side: cacerts read by `openssl pkcs7`, csrattrs
 * by `openssl asn1parse`, simpleenroll as a claim exchange over mutual TLS (verified by `openssl verify -x509_strict`,
 * the claim's quota counted), simplereenroll superseding the old certificate, serverkeygen's key matching its
 * certificate, and every refusal a 4xx with a text body, nothing issued (docs/est.md). Every answer curl gets is also
 * checked against openapi.yaml.
 */
for (const { driver, skip } of drivers())
describe(`EST on ${driver}`, { skip }, () => {
  const ssl = new OpenSslWorkspace();
  // Everything starts 25 days back, so that moving the clock to the real time puts the devices in their renewal window.
  const clock = new ManualClock(new Date(Date.now() - 25 * DAY));
  let t: TestApp;
  let rootPem: string;
  let deviceCa: Body;
  const claims: Record<'line' | 'quota' | 'revoked' | 'expiring' | 'plain', Body> = {} as never;
  /** Client credentials on disk, for curl: cert and key files. */
  const clients: Record<string, { cert: string; key: string }> = {};

  before(async () => {
    const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-subj', '/CN=localhost', '-days', '2', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    assert.equal(made.status, 0, made.output);
    t = await startTestApp(driver, { clock, env: { TLS_CERT_FILE: ssl.file('server.pem'), TLS_KEY_FILE: ssl.file('server.key') } });
    const root = await admin('post', '/v1/authorities', { name: 'EST Root', type: 'root', subject: { commonName: 'EST Root' } });
    rootPem = root.certificatePem;
    const claimCa = await admin('post', '/v1/authorities', { name: 'EST Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'EST Claims CA' } });
    deviceCa = await admin('post', '/v1/authorities', { name: 'EST Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'EST Devices CA' } });
    const claim = (name: string, extra: object) =>
      admin('post', '/v1/claims', {
        name, factory: 'EST factory', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 20, validityDays: 30,
        notAfter: new Date(clock.now().getTime() + 60 * DAY).toISOString(), thingNameTemplate: 'est-{serial}', claimCertificate: { generateKey: true }, ...extra,
      });
    claims.line = await claim('line', {});
    claims.quota = await claim('quota', { maxDevices: 10 });
    claims.revoked = await claim('revoked', {});
    claims.plain = await claim('plain', {});
    // Its window closes before the clock returns to the real time.
    claims.expiring = await claim('expiring', { notAfter: new Date(clock.now().getTime() + DAY).toISOString() });
    for (const [name, body] of Object.entries(claims)) {
      clients[name] = { cert: ssl.file(`${name}-claim.pem`, body.claimCertificate.certificatePem), key: ssl.file(`${name}-claim.key`, body.claimCertificate.privateKeyPem) };
    }
    // The default label (/.well-known/est/…) is the line's claim, with serverkeygen; the others are named.
    await admin('post', '/v1/est/labels', { label: 'default', kind: 'claim', claimId: claims.line.id, serverKeygen: true });
    for (const name of ['quota', 'revoked', 'expiring', 'plain'] as const) await admin('post', '/v1/est/labels', { label: name, kind: 'claim', claimId: claims[name].id });
    await admin('post', '/v1/est/labels', { label: 'ops', kind: 'authority', authorityId: deviceCa.id, profile: 'device', validityDays: 30 });
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function admin(method: 'post' | 'get' | 'delete', path: string, body?: object, expected = [200, 201]): Promise<Body> {
    const req = t.http()[method](path).set(bearer(t.adminKey)).disableTLSCerts();
    const res = await (body === undefined ? req : req.send(body));
    assert.ok(expected.includes(res.status), `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  /** curl against the service, trusting its TLS certificate; `client` presents a certificate (mutual TLS). */
  async function curl(path: string, options: { client?: { cert: string; key: string }; bodyFile?: string; headers?: string[] } = {}): Promise<CurlAnswer> {
    const id = Math.random().toString(36).slice(2);
    const bodyOut = ssl.file(`answer-${id}.body`);
    const headersOut = ssl.file(`answer-${id}.headers`);
    const args = ['-sS', '--cacert', ssl.file('server.pem'), '-o', bodyOut, '-D', headersOut, '-w', '%{http_code}'];
    if (options.client) args.push('--cert', options.client.cert, '--key', options.client.key);
    for (const header of options.headers ?? []) args.push('-H', header);
    if (options.bodyFile && !options.headers?.some((h) => /^content-type:/i.test(h))) args.push('-H', 'Content-Type: application/pkcs10');
    if (options.bodyFile) args.push('--data-binary', `@${options.bodyFile}`);
    args.push(`${t.baseUrl}${path}`);
    const { stdout } = await run('curl', args);
    const headers: Record<string, string> = {};
    // The last header block (curl writes one per response, e.g. after a 100 Continue).
    const blocks = fs.readFileSync(headersOut, 'utf8').trim().split(/\r?\n\r?\n/);
    for (const line of blocks[blocks.length - 1].split(/\r?\n/).slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const answer = { status: Number(stdout), headers, body: fs.readFileSync(bodyOut, 'utf8'), bodyFile: bodyOut };
    const mismatch = contractError({ method: options.bodyFile ? 'POST' : 'GET', url: path, status: answer.status, headers, body: answer.body });
    if (mismatch) throw mismatch;
    return answer;
  }

  /** A key and CSR made by openssl, as an EST body: base64 of the DER (openssl base64 wraps its lines). */
  function estCsr(subject: string, keyFile?: string): { bodyFile: string; keyFile: string } {
    const id = Math.random().toString(36).slice(2);
    const key = keyFile ?? ssl.file(`device-${id}.key`);
    const keyArgs = keyFile ? ['-key', keyFile] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key];
    const made = ssl.run(['req', '-new', ...keyArgs, '-subj', subject, '-outform', 'DER', '-out', `csr-${id}.der`]);
    assert.equal(made.status, 0, made.output);
    const encoded = ssl.run(['base64', '-in', `csr-${id}.der`, '-out', `csr-${id}.b64`]);
    assert.equal(encoded.status, 0, encoded.output);
    return { bodyFile: ssl.file(`csr-${id}.b64`), keyFile: key };
  }

  /** The certificates of a base64 certs-only PKCS#7 answer, as PEM, read by openssl. */
  function certificatesOf(base64: string): string[] {
    const id = Math.random().toString(36).slice(2);
    ssl.file(`p7-${id}.b64`, base64);
    const decoded = ssl.run(['base64', '-d', '-in', `p7-${id}.b64`, '-out', `p7-${id}.der`]);
    assert.equal(decoded.status, 0, decoded.output);
    const printed = ssl.run(['pkcs7', '-inform', 'DER', '-in', `p7-${id}.der`, '-print_certs']);
    assert.equal(printed.status, 0, printed.output);
    return printed.output.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];
  }

  function verify(leafPem: string) {
    return ssl.verify({ rootPem, intermediatesPem: deviceCa.certificatePem, leafPem });
  }

  async function certificateCount(): Promise<number> {
    return (await admin('get', '/v1/certificates?limit=500')).items.length;
  }

  async function bySerial(pem: string): Promise<Body> {
    const serial = ssl.run(['x509', '-noout', '-serial', '-in', ssl.file(`serial-${Math.random().toString(36).slice(2)}.pem`, pem)]).output.trim().split('=')[1].toLowerCase();
    const found = await admin('get', `/v1/certificates?serial=${serial}`);
    assert.equal(found.items.length, 1);
    return found.items[0];
  }

  /** A refusal: the status, a text body naming the code, and nothing issued. */
  async function assertRefused(answer: CurlAnswer, status: number, code: string, issuedBefore: number): Promise<void> {
    assert.equal(answer.status, status, answer.body);
    assert.match(answer.headers['content-type'] ?? '', /^text\/plain/);
    assert.ok(answer.body.startsWith(`${code}: `), answer.body);
    if (status === 401) assert.equal(answer.headers['www-authenticate'], 'Bearer');
    assert.equal(await certificateCount(), issuedBefore, 'nothing was issued');
  }

  describe('must show 1: the operations, with curl and openssl', () => {
    let enrolled: { certPem: string; keyFile: string };

    it('cacerts: the chain as certs-only PKCS#7 that openssl pkcs7 -print_certs reads', async () => {
      for (const path of ['/.well-known/est/cacerts', '/.well-known/est/quota/cacerts']) {
        const answer = await curl(path);
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.headers['content-type'], 'application/pkcs7-mime');
        assert.equal(answer.headers['content-transfer-encoding'], 'base64');
        const certificates = certificatesOf(answer.body);
        assert.equal(certificates.length, 2);
        assert.match(ssl.text(certificates[0]), /Subject: CN ?= ?EST Devices CA/);
        assert.match(ssl.text(certificates[1]), /Subject: CN ?= ?EST Root/);
      }
    });

    it('csrattrs: DER CsrAttrs that openssl asn1parse reads: EC P-256, ecdsa-with-SHA256, serialNumber and CN', async () => {
      const answer = await curl('/.well-known/est/csrattrs');
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.headers['content-type'], 'application/csrattrs');
      ssl.file('attrs.b64', answer.body);
      assert.equal(ssl.run(['base64', '-d', '-in', 'attrs.b64', '-out', 'attrs.der']).status, 0);
      const parsed = ssl.run(['asn1parse', '-inform', 'DER', '-in', 'attrs.der']);
      assert.equal(parsed.status, 0, parsed.output);
      for (const name of ['id-ecPublicKey', 'prime256v1', 'ecdsa-with-SHA256', 'serialNumber', 'commonName']) assert.match(parsed.output, new RegExp(`:${name}\\s*$`, 'm'), parsed.output);
    });

    it('simpleenroll on a claim label over mutual TLS: a device certificate openssl verifies, the claim’s quota counted', async () => {
      const usedBefore = (await admin('get', `/v1/claims/${claims.line.id}`)).used;
      const csr = estCsr('/serialNumber=EST-0001');
      const answer = await curl('/.well-known/est/simpleenroll', { client: clients.line, bodyFile: csr.bodyFile });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.headers['content-type'], 'application/pkcs7-mime; smime-type=certs-only');
      const [certPem, ...rest] = certificatesOf(answer.body);
      assert.equal(rest.length, 0);
      const verified = verify(certPem);
      assert.ok(verified.ok, verified.output);
      assert.match(ssl.text(certPem), /Subject: CN ?= ?est-EST-0001/);
      const record = await bySerial(certPem);
      assert.equal(record.claimId, claims.line.id);
      assert.equal(record.thingName, 'est-EST-0001');
      assert.equal((await admin('get', `/v1/claims/${claims.line.id}`)).used, usedBefore + 1);
      enrolled = { certPem, keyFile: csr.keyFile };
    });

    it('simpleenroll under an authority label with an operator API key', async () => {
      const csr = estCsr('/CN=ops-device-1');
      const answer = await curl('/.well-known/est/ops/simpleenroll', { bodyFile: csr.bodyFile, headers: [`Authorization: Bearer ${t.adminKey}`] });
      assert.equal(answer.status, 200, answer.body);
      const [certPem] = certificatesOf(answer.body);
      assert.ok(verify(certPem).ok);
      assert.match(ssl.text(certPem), /Subject: CN ?= ?ops-device-1/);
    });

    it('serverkeygen: a key made by the service that matches its certificate (multipart/mixed: PKCS#8 + PKCS#7)', async () => {
      const usedBefore = (await admin('get', `/v1/claims/${claims.line.id}`)).used;
      const answer = await curl('/.well-known/est/serverkeygen', { client: clients.line, bodyFile: estCsr('/serialNumber=EST-KEYGEN-1').bodyFile });
      assert.equal(answer.status, 200, answer.body);
      const boundary = /^multipart\/mixed; boundary=(\S+)$/.exec(answer.headers['content-type'] ?? '')?.[1];
      assert.ok(boundary, answer.headers['content-type']);
      const parts = answer.body.split(`--${boundary}`).slice(1, -1).map((part) => {
        const [head, body] = part.replace(/^\r\n/, '').split('\r\n\r\n');
        return { type: /Content-Type: (.+)/i.exec(head)?.[1].trim(), body };
      });
      assert.deepEqual(parts.map((p) => p.type), ['application/pkcs8', 'application/pkcs7-mime; smime-type=certs-only']);
      ssl.file('keygen.b64', parts[0].body);
      assert.equal(ssl.run(['base64', '-d', '-in', 'keygen.b64', '-out', 'keygen.der']).status, 0);
      const keyPublic = ssl.run(['pkey', '-inform', 'DER', '-in', 'keygen.der', '-pubout']);
      assert.equal(keyPublic.status, 0, keyPublic.output);
      const [certPem] = certificatesOf(parts[1].body);
      const certPublic = ssl.run(['x509', '-noout', '-pubkey', '-in', ssl.file('keygen-cert.pem', certPem)]);
      assert.equal(certPublic.output, keyPublic.output, 'the key is the certificate’s');
      assert.ok(verify(certPem).ok);
      assert.match(ssl.text(certPem), /Subject: CN ?= ?est-EST-KEYGEN-1/);
      assert.equal((await admin('get', `/v1/claims/${claims.line.id}`)).used, usedBefore + 1);
    });

    it('serverkeygen?format=p12: key, certificate and chain as a PKCS #12 that openssl pkcs12 opens with the password', async () => {
      const password = `p12-${randomBytes(6).toString('hex')}`;
      const answer = await curl('/.well-known/est/serverkeygen?format=p12', {
        client: clients.line,
        bodyFile: estCsr('/serialNumber=EST-KEYGEN-P12').bodyFile,
        headers: [`X-Pkcs12-Password: ${password}`],
      });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(answer.headers['content-type'], 'application/x-pkcs12');
      assert.match(answer.headers['content-disposition'] ?? '', /^attachment; filename="[0-9a-f]+\.p12"$/);
      const opened = ssl.run(['pkcs12', '-in', answer.bodyFile, '-passin', `pass:${password}`, '-nodes', '-out', 'keygen-p12.pem']);
      assert.equal(opened.status, 0, opened.output);
      const pem = fs.readFileSync(ssl.file('keygen-p12.pem'), 'utf8');
      const certificates = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];
      assert.equal(certificates.length, 3, 'the device certificate, its CA and the root');
      const keyPublic = ssl.run(['pkey', '-in', ssl.file('keygen-p12.pem'), '-pubout']);
      const certPublic = ssl.run(['x509', '-noout', '-pubkey', '-in', ssl.file('keygen-p12-leaf.pem', certificates[0])]);
      assert.equal(keyPublic.status, 0, keyPublic.output);
      assert.equal(certPublic.output, keyPublic.output, 'the key is the certificate’s');
      assert.ok(verify(certificates[0]).ok);
      assert.notEqual(ssl.run(['pkcs12', '-in', answer.bodyFile, '-passin', 'pass:wrong-password', '-nodes', '-out', 'wrong.pem']).status, 0);
    });

    it('serverkeygen?format=p12 without a password, or a weak one, is a 400 and issues nothing', async () => {
      const count = await certificateCount();
      for (const headers of [[], ['X-Pkcs12-Password: short']]) {
        const answer = await curl('/.well-known/est/serverkeygen?format=p12', { client: clients.line, bodyFile: estCsr('/serialNumber=EST-KEYGEN-P12-BAD').bodyFile, headers });
        await assertRefused(answer, 400, 'VALIDATION_FAILED', count);
      }
    });

    it('serverkeygen is refused (403) where the label does not allow it', async () => {
      const count = await certificateCount();
      const answer = await curl('/.well-known/est/plain/serverkeygen', { client: clients.plain, bodyFile: estCsr('/serialNumber=EST-KEYGEN-2').bodyFile });
      await assertRefused(answer, 403, 'SERVER_KEYGEN_NOT_ALLOWED', count);
    });

    it('serverkeygen refuses (422) a CSR that asks for the key encrypted, which is not supported: the key never goes out in clear', async () => {
      const config = ssl.file('encrypt.cnf', '[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n[dn]\nserialNumber = EST-KEYGEN-3\n[attrs]\n1.2.840.113549.1.9.16.2.54 = station-key\n');
      const made = ssl.run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'encrypt.key', '-config', config, '-outform', 'DER', '-out', 'encrypt.der']);
      assert.equal(made.status, 0, made.output);
      assert.equal(ssl.run(['base64', '-in', 'encrypt.der', '-out', 'encrypt.b64']).status, 0);
      const count = await certificateCount();
      await assertRefused(await curl('/.well-known/est/serverkeygen', { client: clients.line, bodyFile: ssl.file('encrypt.b64') }), 422, 'KEY_ENCRYPTION_NOT_SUPPORTED', count);
    });

    it('simplereenroll with the enrolled certificate, in its renewal window: its successor, and the old one superseded', async () => {
      clock.advance(25 * DAY); // back to the real time: the 30-day certificate has 5 days left
      const old = await bySerial(enrolled.certPem);
      const client = { cert: ssl.file('enrolled.pem', enrolled.certPem), key: enrolled.keyFile };
      // RFC 7030 §4.2.2: the subject is the current certificate's.
      const wrongSubject = await curl('/.well-known/est/simplereenroll', { client, bodyFile: estCsr('/CN=someone-else').bodyFile });
      assert.equal(wrongSubject.status, 422, wrongSubject.body);
      const answer = await curl('/.well-known/est/simplereenroll', { client, bodyFile: estCsr('/CN=est-EST-0001').bodyFile });
      assert.equal(answer.status, 200, answer.body);
      const [successorPem] = certificatesOf(answer.body);
      assert.ok(verify(successorPem).ok);
      const successor = await admin('get', `/v1/certificates/${(await bySerial(successorPem)).id}`);
      assert.equal(successor.replaces, old.id);
      assert.equal(successor.thingName, 'est-EST-0001');
      const superseded = await admin('get', `/v1/certificates/${old.id}`);
      assert.equal(superseded.status, 'superseded');
      assert.equal(superseded.replacedBy, successor.id);
      const otherLabel = await curl('/.well-known/est/quota/simplereenroll', { client, bodyFile: estCsr('/CN=est-EST-0001').bodyFile });
      assert.equal(otherLabel.status, 403, otherLabel.body);
      assert.ok(otherLabel.body.startsWith('EST_LABEL_MISMATCH: '));
      const again = await curl('/.well-known/est/simplereenroll', { client, bodyFile: estCsr('/CN=est-EST-0001').bodyFile });
      assert.equal(again.status, 409, again.body);
      assert.ok(again.body.startsWith('CERTIFICATE_SUPERSEDED: '));
    });
  });

  it('simpleenroll on a claim label behind a TLS-terminating proxy: the exchange’s station JWT (x5c) instead of mutual TLS', async () => {
    const privateKey = createPrivateKey(claims.plain.claimCertificate.privateKeyPem);
    // Times from the suite's clock, not Date.now(): the clock stands at the suite's start, and a slow run would otherwise
    // put iat beyond the 30 s skew.
    const now = Math.floor(clock.now().getTime() / 1000);
    const token = stationToken(t, { claimId: claims.plain.id, certificatePem: claims.plain.claimCertificate.certificatePem, privateKey, alg: 'ES256' }, { iat: now, exp: now + 120 });
    const answer = await curl('/.well-known/est/plain/simpleenroll', { bodyFile: estCsr('/serialNumber=JWT-1').bodyFile, headers: [`Authorization: Bearer ${token}`] });
    assert.equal(answer.status, 200, answer.body);
    assert.ok(verify(certificatesOf(answer.body)[0]).ok);
    const replayed = await curl('/.well-known/est/plain/simpleenroll', { bodyFile: estCsr('/serialNumber=JWT-2').bodyFile, headers: [`Authorization: Bearer ${token}`] });
    assert.equal(replayed.status, 401, replayed.body);
    assert.ok(replayed.body.startsWith('TOKEN_REPLAYED: '));
  });

  describe('must show 2: refusals, each a 4xx with a text body, nothing issued', () => {
    it('no client certificate: 401 with WWW-Authenticate', async () => {
      const count = await certificateCount();
      await assertRefused(await curl('/.well-known/est/simpleenroll', { bodyFile: estCsr('/serialNumber=R-1').bodyFile }), 401, 'UNAUTHENTICATED', count);
    });

    it('a certificate of another CA (self-made by openssl): 401', async () => {
      const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.pem', '-subj', '/CN=rogue station', '-days', '1']);
      assert.equal(made.status, 0, made.output);
      const count = await certificateCount();
      const answer = await curl('/.well-known/est/simpleenroll', { client: { cert: ssl.file('rogue.pem'), key: ssl.file('rogue.key') }, bodyFile: estCsr('/serialNumber=R-2').bodyFile });
      await assertRefused(answer, 401, 'CLAIM_CERTIFICATE_UNTRUSTED', count);
    });

    it('a device certificate on a claim label: 401, as the exchange refuses it', async () => {
      const csr = estCsr('/serialNumber=R-3');
      const enrolled = await curl('/.well-known/est/simpleenroll', { client: clients.line, bodyFile: csr.bodyFile });
      assert.equal(enrolled.status, 200, enrolled.body);
      const device = { cert: ssl.file('r3.pem', certificatesOf(enrolled.body)[0]), key: csr.keyFile };
      const count = await certificateCount();
      await assertRefused(await curl('/.well-known/est/simpleenroll', { client: device, bodyFile: estCsr('/serialNumber=R-4').bodyFile }), 401, 'NOT_A_CLAIM_CERTIFICATE', count);
    });

    it('the claim certificate of another claim than the label’s: 403', async () => {
      const count = await certificateCount();
      await assertRefused(await curl('/.well-known/est/quota/simpleenroll', { client: clients.line, bodyFile: estCsr('/serialNumber=R-5').bodyFile }), 403, 'EST_LABEL_MISMATCH', count);
    });

    it('a revoked claim: 403', async () => {
      await admin('post', `/v1/claims/${claims.revoked.id}/revoke`, { reason: 'cessationOfOperation' });
      const count = await certificateCount();
      await assertRefused(await curl('/.well-known/est/revoked/simpleenroll', { client: clients.revoked, bodyFile: estCsr('/serialNumber=R-6').bodyFile }), 403, 'CLAIM_REVOKED', count);
    });

    it('an expired claim: 401 (its claim certificate ends with it)', async () => {
      assert.ok(clock.now() > new Date(claims.expiring.notAfter), 'the claim’s window has closed');
      const count = await certificateCount();
      const answer = await curl('/.well-known/est/expiring/simpleenroll', { client: clients.expiring, bodyFile: estCsr('/serialNumber=R-7').bodyFile });
      await assertRefused(answer, 401, 'CLAIM_CERTIFICATE_EXPIRED', count);
    });

    it('a CSR whose signature does not verify: 400', async () => {
      const csr = estCsr('/serialNumber=R-8');
      const der = Buffer.from(fs.readFileSync(csr.bodyFile, 'utf8').replace(/\s+/g, ''), 'base64');
      der[der.length - 1] ^= 0x01; // the last byte of the signature's s
      const count = await certificateCount();
      const answer = await curl('/.well-known/est/plain/simpleenroll', { client: clients.plain, bodyFile: ssl.file('bad-signature.b64', der.toString('base64')) });
      await assertRefused(answer, 400, 'CSR_SIGNATURE_INVALID', count);
    });

    it('bodies that are not a CSR: 400, and another media type 415, never a 5xx', async () => {
      const count = await certificateCount();
      await assertRefused(await curl('/.well-known/est/plain/simpleenroll', { client: clients.plain, bodyFile: ssl.file('junk.b64', 'not base64 at all!') }), 400, 'INVALID_CSR', count);
      await assertRefused(await curl('/.well-known/est/plain/simpleenroll', { client: clients.plain, bodyFile: ssl.file('junk2.b64', Buffer.from('hello').toString('base64')) }), 400, 'INVALID_CSR', count);
      const json = await curl('/.well-known/est/plain/simpleenroll', { client: clients.plain, bodyFile: estCsr('/serialNumber=R-9').bodyFile, headers: ['Content-Type: application/json'] });
      await assertRefused(json, 415, 'UNSUPPORTED_MEDIA_TYPE', count);
      const form = await curl('/.well-known/est/plain/simpleenroll', { client: clients.plain, bodyFile: estCsr('/serialNumber=R-10').bodyFile, headers: ['Content-Type: application/x-www-form-urlencoded'] });
      await assertRefused(form, 415, 'UNSUPPORTED_MEDIA_TYPE', count);
      const large = ssl.file('large.b64', `${'A'.repeat(76)}\n`.repeat(400));
      await assertRefused(await curl('/.well-known/est/plain/simpleenroll', { client: clients.plain, bodyFile: large }), 413, 'PAYLOAD_TOO_LARGE', count);
      const missing = await curl('/.well-known/est/no-such-label/cacerts');
      await assertRefused(missing, 404, 'EST_LABEL_NOT_FOUND', count);
    });

    it('50 parallel simpleenroll on a 10-device claim: exactly 10 certificates, 40 refusals', async () => {
      const count = await certificateCount();
      const csrs = Array.from({ length: 50 }, (_, i) => estCsr(`/serialNumber=Q-${String(i).padStart(3, '0')}`));
      const answers = await Promise.all(csrs.map((csr) => curl('/.well-known/est/quota/simpleenroll', { client: clients.quota, bodyFile: csr.bodyFile })));
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 200).length, 10, statuses.join(','));
      assert.equal(statuses.filter((s) => s === 409).length, 40, statuses.join(','));
      for (const refused of answers.filter((a) => a.status !== 200)) assert.ok(refused.body.startsWith('CLAIM_QUOTA_EXHAUSTED: '), refused.body);
      assert.equal(await certificateCount(), count + 10);
      const claim = await admin('get', `/v1/claims/${claims.quota.id}`);
      assert.equal(claim.used, 10);
    });
  });

  describe('labels (admin API)', () => {
    it('lists, refuses bad names and duplicates, deletes (audited)', async () => {
      const list = await admin('get', '/v1/est/labels');
      assert.deepEqual(list.items.map((l: Body) => l.label), ['default', 'expiring', 'ops', 'plain', 'quota', 'revoked']);
      assert.equal(list.items.find((l: Body) => l.label === 'default').default, true);
      for (const label of ['simpleenroll', 'UPPER', 'a'.repeat(65)]) {
        const res = await t.http().post('/v1/est/labels').set(bearer(t.adminKey)).disableTLSCerts().send({ label, kind: 'claim', claimId: claims.plain.id });
        assert.ok(res.status === 400 || res.status === 422, `${label}: ${res.status}`);
      }
      const duplicate = await t.http().post('/v1/est/labels').set(bearer(t.adminKey)).disableTLSCerts().send({ label: 'plain', kind: 'claim', claimId: claims.plain.id });
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body.code, 'EST_LABEL_EXISTS');
      await admin('delete', '/v1/est/labels/ops');
      const gone = await curl('/.well-known/est/ops/csrattrs');
      assert.equal(gone.status, 404);
      const events = await admin('get', '/v1/audit?action=est-label.deleted');
      assert.equal(events.items[0].target.id, 'ops');
      assert.equal((await admin('get', '/v1/audit/verify')).ok, true);
    });
  });
});

/** The README's EST commands, exactly as an integrator pastes them (bash, curl, openssl), against the service. */
for (const { driver, skip } of drivers())
describe(`README EST section on ${driver}`, { skip }, () => {
  const ssl = new OpenSslWorkspace();
  const clock = new ManualClock(new Date(Date.now() - 25 * DAY));
  let t: TestApp;
  let claimId: string;

  before(async () => {
    const made = ssl.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server-ca.pem', '-subj', '/CN=localhost', '-days', '2', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    assert.equal(made.status, 0, made.output);
    t = await startTestApp(driver, { clock, env: { TLS_CERT_FILE: ssl.file('server-ca.pem'), TLS_KEY_FILE: ssl.file('server.key') } });
    const post = async (path: string, body: object): Promise<Body> => {
      const res = await t.http().post(path).set(bearer(t.adminKey)).disableTLSCerts().send(body);
      assert.equal(res.status, 201, res.text);
      return res.body;
    };
    const root = await post('/v1/authorities', { name: 'Acme Root', type: 'root', subject: { commonName: 'Acme Root' } });
    const claims = await post('/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Acme Claims CA' } });
    const devices = await post('/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Acme Devices CA' } });
    const claim = await post('/v1/claims', {
      name: 'Line 3', factory: 'Acme', claimAuthorityId: claims.id, deviceAuthorityId: devices.id, maxDevices: 100, validityDays: 30,
      notAfter: new Date(Date.now() + 30 * DAY).toISOString(), serialPattern: 'SN[0-9]{8}', thingNameTemplate: 'acme-{serial}', claimCertificate: { generateKey: true },
    });
    claimId = claim.id;
    ssl.file('claim.pem', claim.claimCertificate.certificatePem);
    ssl.file('claim.key', claim.claimCertificate.privateKeyPem);
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function bash(script: string): Promise<string> {
    // EST as the enroll block set it: the renew block continues the same shell.
    const env = { PATH: process.env.PATH, HOME: ssl.dir, FLEET_PKI_URL: t.baseUrl, FLEET_PKI_KEY: t.adminKey, CLAIM_ID: claimId, EST: `${t.baseUrl}/.well-known/est/line-3` };
    try {
      const { stdout, stderr } = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ssl.dir, env });
      return stdout + stderr;
    } catch (err) {
      const failed = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`the README's EST commands failed: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`);
    }
  }

  it('enrolls a device, reads cacerts and csrattrs, and gets a service-made key that matches its certificate', async () => {
    const output = await bash(readmeBlock('enroll'));
    assert.match(output, /device\.pem: OK/);
    assert.match(output, /key matches certificate/);
    assert.match(output, /:prime256v1/);
    const device = await t.http().get('/v1/certificates?thingName=acme-SN00000001').set(bearer(t.adminKey)).disableTLSCerts();
    assert.equal(device.body.items.length, 1);
    assert.equal((await t.http().get(`/v1/claims/${claimId}`).set(bearer(t.adminKey)).disableTLSCerts()).body.used, 2);
  });

  it('renews the device in its window; the old certificate is superseded', async () => {
    clock.advance(25 * DAY);
    const output = await bash(readmeBlock('renew'));
    assert.match(output, /device-next\.pem: OK/);
    const items = (await t.http().get('/v1/certificates?thingName=acme-SN00000001').set(bearer(t.adminKey)).disableTLSCerts()).body.items as Body[];
    assert.deepEqual(items.map((c) => c.status).sort(), ['active', 'superseded']);
  });
});
