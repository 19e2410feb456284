/**
 * Example factory station for Fleet PKI: provisions ONE device per run.
 *
 *   1. makes the device's EC P-256 key and a CSR with CN = the device serial (kept in the output directory,
 *      so a re-run for the same device sends the very same request);
 *   2. signs a short-lived JWT with the claim key, the claim certificate in its `x5c` header;
 *   3. POSTs {deviceSerial, csr} to /v1/provisioning/exchange;
 *   4. writes the device certificate and CA chain next to the key.
 *
 * Usage (every option can also come from the environment variable in brackets):
 *   node station.js --url https://pki.example.com   [FLEET_PKI_URL]
 *                   --claim-cert claim.pem          [CLAIM_CERT_FILE]  claim certificate (PEM; may be followed by its chain)
 *                   --claim-key claim.key           [CLAIM_KEY_FILE]   its private key (PKCS #8 or SEC1/PKCS #1 PEM)
 *                   --serial SN00012345             [DEVICE_SERIAL]
 *                   [--out DIR]                     [OUT_DIR]          default ./devices/<serial>
 *                   [--idempotency-key KEY]         [IDEMPOTENCY_KEY]  default station-<serial>; '' sends none
 *                   [--audience URL]                [FLEET_PKI_AUDIENCE] default <url>/v1/provisioning/exchange;
 *                                                                      must equal the service's PUBLIC_BASE_URL + that path
 *                   [--station NAME]                [STATION_NAME]     recorded in the audit log (JWT `sub`)
 *
 * Exit status: 0 provisioned (or already provisioned with this key: same certificate); 1 refused or failed; 2 bad usage.
 * Dependencies: Node.js >= 20 (fetch, node:crypto) and @peculiar/asn1-{csr,x509,schema} to encode the CSR.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, randomUUID, sign, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';

const EXCHANGE_PATH = '/v1/provisioning/exchange';
const TOKEN_LIFETIME_SECONDS = 120; // the service accepts at most 300
const REQUEST_TIMEOUT_MS = 30_000;

// ---- configuration --------------------------------------------------------------------------------------------

function readConfig() {
  // Every option takes a string value; an unknown option or a missing value is a usage error.
  const names = ['url', 'claim-cert', 'claim-key', 'serial', 'out', 'idempotency-key', 'audience', 'station'] as const;
  let values: Partial<Record<(typeof names)[number], string>>;
  try {
    values = parseArgs({ options: Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])) }).values as typeof values;
  } catch (err) {
    usage((err as Error).message);
  }
  const env = process.env;
  const required = (value: string | undefined, what: string): string => {
    if (!value) usage(`${what} is required`);
    return value;
  };
  const url = required(values.url ?? env.FLEET_PKI_URL, '--url (FLEET_PKI_URL)').replace(/\/+$/, '');
  const claimCertFile = required(values['claim-cert'] ?? env.CLAIM_CERT_FILE, '--claim-cert (CLAIM_CERT_FILE)');
  const claimKeyFile = required(values['claim-key'] ?? env.CLAIM_KEY_FILE, '--claim-key (CLAIM_KEY_FILE)');
  const serial = required(values.serial ?? env.DEVICE_SERIAL, '--serial (DEVICE_SERIAL)');
  return {
    url,
    claimCertFile,
    claimKeyFile,
    serial,
    // Serials may contain '/' and ':'; keep the directory name to one safe path segment.
    outDir: values.out ?? env.OUT_DIR ?? path.join('devices', serial.replace(/[^A-Za-z0-9._-]/g, '_')),
    // With a key, a retry after a lost answer returns the certificate issued the first time (200), never a second one.
    idempotencyKey: values['idempotency-key'] ?? env.IDEMPOTENCY_KEY ?? `station-${serial}`,
    audience: values.audience ?? env.FLEET_PKI_AUDIENCE ?? `${url}${EXCHANGE_PATH}`,
    station: values.station ?? env.STATION_NAME,
  };
}

function usage(message: string): never {
  console.error(`station: ${message}\nusage: node station.js --url URL --claim-cert FILE --claim-key FILE --serial SERIAL [--out DIR] [--idempotency-key KEY] [--audience URL] [--station NAME]`);
  process.exit(2);
}

// ---- device key and CSR ---------------------------------------------------------------------------------------

/**
 * The device key and CSR, made once and kept in `outDir`: a re-run after a crash or a lost answer sends the
 * same CSR, which the service recognises as a retry. The key is written 0600, via a temporary file, before the
 * CSR; so a CSR on disk always has its key next to it.
 */
function deviceKeyAndCsr(outDir: string, serial: string): { key: KeyObject; csrPem: string; reused: boolean } {
  const keyFile = path.join(outDir, 'device.key');
  const csrFile = path.join(outDir, 'device.csr');
  fs.mkdirSync(outDir, { recursive: true, mode: 0o700 });
  if (fs.existsSync(keyFile) && fs.existsSync(csrFile)) {
    return { key: createPrivateKey(fs.readFileSync(keyFile)), csrPem: fs.readFileSync(csrFile, 'utf8'), reused: true };
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileAtomic(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  const csrPem = makeCsr(privateKey, serial);
  writeFileAtomic(csrFile, csrPem, 0o644);
  return { key: privateKey, csrPem, reused: false };
}

/** PKCS #10 request: subject CN = serial, the public key, no attributes, signed ECDSA with SHA-256. */
function makeCsr(privateKey: KeyObject, commonName: string): string {
  const info = new CertificationRequestInfo({
    subject: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: commonName }) })])]),
    subjectPKInfo: AsnConvert.parse(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  // X.509 wants the DER-encoded ECDSA signature here (node's default), unlike JWS below.
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(info)), privateKey);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }), // ecdsa-with-SHA256
    signature: new Uint8Array(signature).buffer,
  });
  return pem('CERTIFICATE REQUEST', Buffer.from(AsnConvert.serialize(csr)));
}

// ---- station token (JWT with x5c) -----------------------------------------------------------------------------

/** JWS algorithm for the claim key: ES256 (P-256), ES384 (P-384) or RS256 (RSA), the three the service accepts. */
function algorithmFor(key: KeyObject): { alg: 'ES256' | 'ES384' | 'RS256'; hash: 'sha256' | 'sha384' } {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return { alg: 'ES256', hash: 'sha256' };
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1') return { alg: 'ES384', hash: 'sha384' };
  if (key.asymmetricKeyType === 'rsa') return { alg: 'RS256', hash: 'sha256' };
  throw new Error(`unsupported claim key (${key.asymmetricKeyType} ${curve ?? ''}): use EC P-256, EC P-384 or RSA`);
}

/** A single-use token: fresh `jti`, expiring in 2 minutes, addressed to the exchange URL (`aud`). */
function stationToken(claimKey: KeyObject, claimChainDer: Buffer[], audience: string, station: string | undefined): string {
  const { alg, hash } = algorithmFor(claimKey);
  const now = Math.floor(Date.now() / 1000);
  // x5c is STANDARD base64 (with padding) of each DER certificate, leaf first — not base64url.
  const header = { alg, typ: 'JWT', x5c: claimChainDer.map((der) => der.toString('base64')) };
  const payload = { aud: audience, iat: now, exp: now + TOKEN_LIFETIME_SECONDS, jti: randomUUID(), ...(station ? { sub: station } : {}) };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  // JWS ECDSA signatures are raw r‖s (RFC 7518 §3.4), hence 'ieee-p1363'; RSA keys ignore dsaEncoding (PKCS #1 v1.5).
  const signature = sign(hash, Buffer.from(signingInput), { key: claimKey, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

// ---- the exchange ---------------------------------------------------------------------------------------------

interface ExchangeResult {
  certificateId: string;
  thingName: string;
  serial: string;
  notAfter: string;
  certificatePem: string;
  chainPem: string;
  iot: { status: string };
}

type Attempt = { kind: 'answer'; status: number; body: Record<string, unknown> | null; text: string; retryAfter: number | null } | { kind: 'network'; error: Error };

async function postExchange(url: string, token: string, idempotencyKey: string, body: object): Promise<Attempt> {
  try {
    const res = await fetch(`${url}${EXCHANGE_PATH}`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> | null = null;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON (a proxy's error page, say): reported as text
    }
    const retryAfter = Number(res.headers.get('retry-after'));
    return { kind: 'answer', status: res.status, body: parsed, text, retryAfter: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null };
  } catch (err) {
    // Connection refused or reset, DNS, timeout: the service may or may not have issued; the retry will tell.
    return { kind: 'network', error: err as Error };
  }
}

async function main(): Promise<number> {
  const config = readConfig();
  const claimChainDer = pemBlocks(fs.readFileSync(config.claimCertFile, 'utf8'), 'CERTIFICATE');
  if (claimChainDer.length === 0) usage(`${config.claimCertFile} holds no PEM certificate`);
  const claimKey = createPrivateKey(fs.readFileSync(config.claimKeyFile));
  if (!new X509Certificate(claimChainDer[0]).checkPrivateKey(claimKey)) usage(`${config.claimKeyFile} is not the key of ${config.claimCertFile}`);

  const device = deviceKeyAndCsr(config.outDir, config.serial);
  if (device.reused) console.log(`reusing the device key and CSR in ${config.outDir} (an earlier run for ${config.serial})`);
  const body = { deviceSerial: config.serial, csr: device.csrPem };

  // Two attempts at most. The retry sends the same body and Idempotency-Key, with a new token (tokens are single use).
  let attempt: Attempt | undefined;
  for (let tryNumber = 1; tryNumber <= 2; tryNumber++) {
    const token = stationToken(claimKey, claimChainDer.slice(0, 4), config.audience, config.station);
    attempt = await postExchange(config.url, token, config.idempotencyKey, body);
    const transient = attempt.kind === 'network' || attempt.status === 503;
    if (!transient || tryNumber === 2) break;
    const waitSeconds = Math.min(attempt.kind === 'answer' ? attempt.retryAfter ?? 1 : 1, 30);
    console.error(`${attempt.kind === 'network' ? `network error (${describe(attempt.error)})` : 'service unavailable (503)'}; retrying in ${waitSeconds} s`);
    await new Promise((resolve) => setTimeout(resolve, waitSeconds * 1000));
  }

  if (!attempt || attempt.kind === 'network') {
    console.error(`failed: network error (${attempt ? describe(attempt.error) : 'no attempt'}); run again with the same options to retry safely`);
    return 1;
  }
  if (attempt.status !== 200 && attempt.status !== 201) {
    // Errors are application/problem+json with a stable `code` (e.g. SERIAL_NOT_ALLOWED, CLAIM_QUOTA_EXHAUSTED).
    const problem = attempt.body ?? {};
    console.error(`refused: HTTP ${attempt.status} code=${String(problem.code ?? '(none)')} detail=${String(problem.detail ?? attempt.text.slice(0, 300))}`);
    return 1;
  }

  const result = attempt.body as unknown as ExchangeResult;
  // Never trust blindly: the certificate must certify the key we made.
  if (!new X509Certificate(result.certificatePem).checkPrivateKey(device.key)) {
    console.error('failed: the certificate returned does not match the device key');
    return 1;
  }
  writeFileAtomic(path.join(config.outDir, 'device.pem'), result.certificatePem, 0o644);
  writeFileAtomic(path.join(config.outDir, 'chain.pem'), result.chainPem, 0o644);
  console.log(`${attempt.status === 201 ? 'provisioned' : 'already provisioned (same certificate as before)'}: ${config.serial}`);
  console.log(`thingName=${result.thingName}`);
  console.log(`certificateId=${result.certificateId}`);
  console.log(`iot.status=${result.iot.status}`);
  console.log(`notAfter=${result.notAfter}`);
  console.log(`files: ${['device.key', 'device.pem', 'chain.pem'].map((f) => path.join(config.outDir, f)).join(' ')}`);
  return 0;
}

// ---- small helpers --------------------------------------------------------------------------------------------

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
}

function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
}

/** Write to a temporary file with the final mode, then rename: a crash never leaves half a file. */
function writeFileAtomic(file: string, content: string | Buffer, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.rmSync(temporary, { force: true });
  fs.writeFileSync(temporary, content, { mode, flag: 'wx' }); // created with the mode: never readable by others
  fs.chmodSync(temporary, mode); // exactly the mode, whatever the umask
  fs.renameSync(temporary, file);
}

function describe(err: Error): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    console.error(`failed: ${(err as Error).message}`);
    process.exitCode = 1;
  },
);
