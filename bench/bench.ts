/**
 * Benchmarks. Run with `npm run bench -- <name> [options]`:
 *   issuance [--backend local|aws-kms] [--count N] [--concurrency C] [--kms-latency-ms 20] [--kms-tps 300]
 *       Certificates issued per second through the HTTP API of the real service (its own process, SQLite:
 *       CSR checks, signing, insert + audit event in one transaction); this process is the client. local: reported against references measured in the same run (raw ECDSA P-256
 *       signatures per second; the X.509 work alone). aws-kms: the KMS stand-in runs in its own process with
 *       the given latency and token-bucket quota; reported as the fraction of that quota used, and failures.
 *   exchange [--count N] [--concurrency C] [--warmup W]
 *       The factory exchange (POST /v1/provisioning/exchange) end to end over HTTP against the service in its own
 *       process (SQLite, local keys): each call signs a fresh x5c JWT (ES256) with the claim key, as a station does,
 *       for a distinct serial (and Idempotency-Key) with its own precomputed device CSR. Reports exchanges/s, p50/p95 latency and
 *       failures, against the plain POST /v1/certificates issuance rate measured in the same run over as many
 *       CSRs at the same concurrency (the two interleaved in quarters; W warm-up calls per path first, default 1000).
 *   crl [--sizes 1000,10000,50000]
 *       Time to build and sign a CRL with n entries, per entry, to show it stays linear.
 *   ocsp [--certificates M] [--seconds S] [--connections C] [--threads T]
 *       OCSP POST requests per second, each for a random one of M certificates the service issued (default 500), with
 *       a fresh nonce per request (always signed) and without (reusable answers), against the service (its own process,
 *       SQLite, local keys) and, in the same run with the same client (wrk, which must be installed), against
 *       `openssl ocsp -index` (its own process) serving the same CA from an index.txt of the same serials with an
 *       openssl-made P-256 responder key. The runs are interleaved in halves of S seconds (default 10) per mode;
 *       reports requests/s, p50/p99 latency, failures, and ours/openssl.
 * PostgreSQL runs need FLEET_PKI_TEST_PG_URL.
 */
import 'reflect-metadata';
import { createPrivateKey, generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { certificateParts, signCertificate } from '../src/pki/certificate';
import { parseCsr } from '../src/pki/csr';
import { basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../src/pki/extensions';
import { randomSerial } from '../src/pki/serial';
import { buildCsr } from '../tools/csr-builder';
import { generateApiKey } from '../src/auth/api-key-secret';
import { signCrl, CrlEntry } from '../src/pki/crl';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';
import { encodeOcspRequest } from '../tools/clients/ocsp-client';
import { pemDecode } from '../tools/clients/pem';
import { signX5cJwt } from '../tools/clients/station-jwt';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : fallback;
}

function bearer(key: string): { Authorization: string } {
  return { Authorization: `Bearer ${key}` };
}

/** Reference: raw P-256 ECDSA signatures per second over a TBS-sized message, single-threaded. */
function referenceSignaturesPerSecond(): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const message = randomBytes(600);
  const deadline = performance.now() + 2000;
  let count = 0;
  const started = performance.now();
  while (performance.now() < deadline) {
    sign('sha256', message, privateKey);
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

interface KmsStats {
  throttled: number;
  calls: Record<string, number>;
  /** Tokens left in the stand-in's bucket: what could still be signed at once, beyond the sustained rate. */
  tokens: number | null;
}

/** Starts the KMS stand-in in its own process (so its CPU is not the service's), with the given knobs. */
async function startKmsStandIn(latencyMs: number, tps: number): Promise<{ endpoint: string; stats: () => Promise<KmsStats>; stop: () => void }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(process.execPath, [path.join(__dirname, '../scripts/dev-kms.js')], {
    env: { ...process.env, KMS_STANDIN_PORT: String(port), KMS_STANDIN_LATENCY_MS: String(latencyMs), KMS_STANDIN_TPS: String(tps) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`KMS stand-in exited with ${code}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    stats: async () => (await fetch(`${endpoint}/_standin/stats`)).json() as Promise<KmsStats>,
    stop: () => child.kill('SIGTERM'),
  };
}

/** Starts the real service (`node dist/src/main.js`) in its own process on a fresh database. */
async function startService(env: Record<string, string>): Promise<{ baseUrl: string; adminKey: string; stop: () => void }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-'));
  const adminKey = generateApiKey().key;
  const child = spawn(process.execPath, [path.join(__dirname, '../src/main.js')], {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      // The address the benchmark calls: exchange tokens are addressed (aud) to PUBLIC_BASE_URL + the exchange path.
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      FLEET_PKI_BOOTSTRAP_ADMIN_KEY: adminKey,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`service exited with ${code}`)));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    adminKey,
    stop: () => {
      child.kill('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function issuance(): Promise<void> {
  const backend = option('backend', 'local') as 'local' | 'aws-kms';
  const kmsTps = Number(option('kms-tps', '300'));
  const kmsLatency = Number(option('kms-latency-ms', '20'));
  const count = Number(option('count', backend === 'aws-kms' ? String(kmsTps * 10) : '2000'));
  const concurrency = Number(option('concurrency', '32'));
  const kms = backend === 'aws-kms' ? await startKmsStandIn(kmsLatency, kmsTps) : undefined;
  const service = await startService(
    kms
      ? {
          AWS_REGION: 'us-east-1',
          AWS_ENDPOINT_URL_KMS: kms.endpoint,
          AWS_ACCESS_KEY_ID: 'bench',
          AWS_SECRET_ACCESS_KEY: 'bench',
          AWS_EC2_METADATA_DISABLED: 'true',
          KMS_RETRY_MODE: option('retry-mode', 'adaptive'),
          // The service's share of the quota (the whole of it here: one replica); 0 = unpaced.
          KMS_MAX_SIGN_RATE: option('kms-max-sign-rate', String(kmsTps)),
        }
      : {},
  );
  const api = async (route: string, body: unknown) => {
    const res = await fetch(`${service.baseUrl}${route}`, {
      method: 'POST',
      headers: { ...bearer(service.adminKey), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  try {
    const root = await api('/v1/authorities', { name: 'Bench Root', type: 'root', keyBackend: backend, subject: { commonName: 'Bench Root' } });
    const ca = await api('/v1/authorities', { name: 'Bench Issuing', type: 'intermediate', parentId: root.body.id, keyBackend: backend, subject: { commonName: 'Bench Issuing' } });
    if (ca.status !== 201) throw new Error(`could not create the CA: ${JSON.stringify(ca.body)}`);
    const csrs = Array.from({ length: count }, (_, i) => buildCsr({ commonName: `bench-${i}` }));
    const failures: string[] = [];
    const issueOne = async (i: number) => {
      const res = await api('/v1/certificates', { authorityId: ca.body.id, csr: csrs[i], profile: 'device', thingName: `bench-${i}` });
      if (res.status !== 201) failures.push(`${res.status} ${JSON.stringify(res.body)}`);
    };
    // Warm-up: JIT, connection pools, signer cache (and, for KMS, the stand-in's initial burst allowance).
    const warmup = backend === 'aws-kms' ? Math.min(kmsTps, Math.floor(count / 5)) : 200;
    let next = 0;
    const run = async (until: number) => {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < until) await issueOne(next++);
        }),
      );
    };
    await run(warmup);
    const statsBefore = kms ? await kms.stats() : undefined;
    const started = performance.now();
    await run(count);
    const seconds = (performance.now() - started) / 1000;
    const measured = count - warmup;
    const rate = measured / seconds;
    console.log(`issuance (service process on SQLite, ${backend} keys, ${concurrency} concurrent clients): ${measured} certificates in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} certificates/s, ${failures.length} failed`);
    for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure.slice(0, 200)}`);
    if (kms) {
      const after = await kms.stats();
      const throttled = after.throttled - (statsBefore?.throttled ?? 0);
      const signs = (after.calls.Sign ?? 0) - (statsBefore?.calls.Sign ?? 0);
      // The most the quota allowed in the window: the sustained rate for its duration plus whatever was left in
      // the bucket when it opened. Signatures used / that = the fraction of the quota the service managed to use.
      const allowed = kmsTps * seconds + (statsBefore?.tokens ?? 0);
      console.log(`KMS stand-in: quota ${kmsTps} TPS (token bucket, 1 s burst), latency ${kmsLatency} ms; ${signs} Sign calls, ${throttled} throttled (retried by the SDK)`);
      console.log(`fraction of the KMS quota used = ${rate.toFixed(0)} / ${kmsTps} TPS = ${(rate / kmsTps).toFixed(3)} (goal >= 0.95 with 0 failed)`);
      console.log(`  (counting the stand-in's unused initial 1 s burst as well: ${measured} / ${allowed.toFixed(0)} allowed = ${(measured / allowed).toFixed(3)})`);
    } else {
      const reference = referenceSignaturesPerSecond();
      const pkiOnly = await pkiOnlyPerSecond(csrs.slice(0, 400));
      console.log(`reference: raw ECDSA P-256 signatures (node:crypto, one thread) = ${reference.toFixed(0)}/s`);
      console.log(`pki only (parse + check CSR, encode + sign certificate; no HTTP, no database) = ${pkiOnly.toFixed(0)}/s`);
      console.log(`ratio issuance/reference = ${(rate / reference).toFixed(4)}; issuance/pki-only = ${(rate / pkiOnly).toFixed(3)}`);
    }
    if (failures.length) process.exitCode = 1;
  } finally {
    service.stop();
    kms?.stop();
  }
}

/** `total` calls of `call(i)` by `concurrency` closed-loop clients; the latency of each call and the wall time. */
async function closedLoop(total: number, concurrency: number, call: (i: number) => Promise<void>): Promise<{ seconds: number; latenciesMs: number[] }> {
  const latenciesMs: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await call(i);
        latenciesMs.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latenciesMs };
}

function percentile(sortedMs: number[], p: number): number {
  return sortedMs.length ? sortedMs[Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)] : NaN;
}

function summary(what: string, count: number, run: { seconds: number; latenciesMs: number[] }, failures: string[]): number {
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  const rate = count / run.seconds;
  console.log(
    `${what}: ${count} in ${run.seconds.toFixed(2)} s = ${rate.toFixed(0)}/s, latency p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
      `p95 ${percentile(sorted, 95).toFixed(1)} ms, ${failures.length} failed`,
  );
  for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure.slice(0, 200)}`);
  return rate;
}

/**
 * The factory exchange end to end: stations (this process) sign a fresh x5c JWT per call and POST a distinct
 * serial with its device CSR; the service (its own process, SQLite, local keys) authenticates the token (claim
 * certificate lookup, signature, single-use jti), applies the claim (window, pattern, quota, retry detection),
 * issues, and records device, quota, idempotency key and audit in one transaction. Device CSRs are made before
 * the clock starts: that is the device's work, not the service's.
 */
async function exchange(): Promise<void> {
  const count = Number(option('count', '2000'));
  const concurrency = Number(option('concurrency', '16'));
  const warmup = Number(option('warmup', '1000'));
  const service = await startService({});
  const api = async (route: string, body: unknown, headers: Record<string, string>) => {
    const res = await fetch(`${service.baseUrl}${route}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const admin = async (route: string, body: unknown) => {
    const res = await api(route, body, bearer(service.adminKey));
    if (res.status !== 201) throw new Error(`${route}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: string; claimCertificate: { certificatePem: string; privateKeyPem: string } };
  };
  try {
    // Setup, not timed: a root, a claims CA, a device CA (local keys), and a claim with a generated P-256 key.
    const root = await admin('/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
    const claimCa = await admin('/v1/authorities', { name: 'Bench Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Bench Claims' } });
    const deviceCa = await admin('/v1/authorities', { name: 'Bench Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Devices' } });
    const claim = await admin('/v1/claims', {
      name: 'Bench', factory: 'Bench', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: warmup + count,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), serialPattern: 'BENCH[0-9]{7}', thingNameTemplate: 'bench-{serial}',
      claimCertificate: { generateKey: true },
    });
    const claimKey = createPrivateKey(claim.claimCertificate.privateKeyPem);
    const claimChain = [pemDecode(claim.claimCertificate.certificatePem, ['CERTIFICATE'])!];
    const audience = `${service.baseUrl}/v1/provisioning/exchange`;

    // Distinct device keys, serials and CSRs, made before timing; another set for the reference issuance.
    const serial = (i: number) => `BENCH${String(i).padStart(7, '0')}`;
    const exchangeCsrs = Array.from({ length: warmup + count }, (_, i) => buildCsr({ commonName: serial(i) }));
    const issuanceCsrs = Array.from({ length: warmup + count }, (_, i) => buildCsr({ commonName: `ref-${i}` }));

    const exchangeFailures: string[] = [];
    const exchangeOne = async (i: number) => {
      // The station's per-call work, timed: a single-use token (fresh jti) signed with the claim key.
      const now = Math.floor(Date.now() / 1000);
      const token = signX5cJwt({ alg: 'ES256', privateKey: claimKey, chainDer: claimChain, payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID(), sub: 'bench-station' } });
      // With an Idempotency-Key, as the example station sends by default.
      const res = await api('/v1/provisioning/exchange', { deviceSerial: serial(i), csr: exchangeCsrs[i] }, { Authorization: `Bearer ${token}`, 'Idempotency-Key': `station-${serial(i)}` }).catch(
        (err: Error) => ({ status: 0, body: { error: err.message } }),
      );
      if (res.status !== 201) exchangeFailures.push(`${serial(i)}: ${res.status} ${JSON.stringify(res.body)}`);
    };
    const issuanceFailures: string[] = [];
    const issueOne = async (i: number) => {
      const res = await api('/v1/certificates', { authorityId: deviceCa.id, csr: issuanceCsrs[i], profile: 'device', thingName: `ref-${i}` }, bearer(service.adminKey)).catch(
        (err: Error) => ({ status: 0, body: { error: err.message } }),
      );
      if (res.status !== 201) issuanceFailures.push(`${res.status} ${JSON.stringify(res.body)}`);
    };

    // Warm-up of both paths (JIT, connections, signer cache, prepared statements); not counted.
    await closedLoop(warmup, concurrency, (i) => issueOne(i));
    await closedLoop(warmup, concurrency, (i) => exchangeOne(i));
    const warmupFailures = { exchange: exchangeFailures.splice(0).length, issuance: issuanceFailures.splice(0).length };
    if (warmupFailures.exchange || warmupFailures.issuance) console.log(`  warm-up failures: ${JSON.stringify(warmupFailures)}`);

    // Timed in segments, in the order I E E I I E E I (I = issuance, E = exchange; each a quarter of --count), so a
    // drift during the run (a growing database, WAL checkpoints, a busy neighbour on the VM) weighs on both paths
    // alike. A path's rate is its count over the sum of its segments' times.
    type Run = { seconds: number; latenciesMs: number[] };
    const order: ('I' | 'E')[] = ['I', 'E', 'E', 'I', 'I', 'E', 'E', 'I'];
    const runs: Record<'I' | 'E', Run[]> = { I: [], E: [] };
    const segments: string[] = [];
    for (const path of order) {
      const k = runs[path].length;
      const from = Math.floor((k * count) / 4);
      const to = Math.floor(((k + 1) * count) / 4);
      const run = await closedLoop(to - from, concurrency, (i) => (path === 'I' ? issueOne(warmup + from + i) : exchangeOne(warmup + from + i)));
      runs[path].push(run);
      segments.push(`${path} ${((to - from) / run.seconds).toFixed(0)}`);
    }
    const combine = (parts: Run[]): Run => ({ seconds: parts.reduce((sum, r) => sum + r.seconds, 0), latenciesMs: parts.flatMap((r) => r.latenciesMs) });

    console.log(`exchange benchmark: service process on SQLite, local keys (EC P-256 CAs), ${concurrency} concurrent clients, ${warmup} warm-up calls per path not counted`);
    const issuanceRate = summary('  reference  POST /v1/certificates (API key)            ', count, combine(runs.I), issuanceFailures);
    const exchangeRate = summary('  exchange   POST /v1/provisioning/exchange (ES256 JWT) ', count, combine(runs.E), exchangeFailures);
    console.log(`  ratio exchange/issuance = ${(exchangeRate / issuanceRate).toFixed(3)}`);
    console.log(`  per segment, in run order (/s): ${segments.join(', ')}`);
    const after = await fetch(`${service.baseUrl}/v1/claims/${claim.id}`, { headers: bearer(service.adminKey) }).then((r) => r.json() as Promise<Record<string, number>>);
    const expected = warmup + count - exchangeFailures.length - warmupFailures.exchange;
    console.log(`  claim quota: used ${after.used} of ${after.maxDevices} (expected ${expected})`);
    if (warmupFailures.exchange || warmupFailures.issuance || exchangeFailures.length || issuanceFailures.length || after.used !== expected) process.exitCode = 1;
  } finally {
    service.stop();
  }
}

/** The X.509 work of one issuance alone, for seeing how much HTTP and the database add. */
async function pkiOnlyPerSecond(csrs: string[]): Promise<number> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer = buildName({ commonName: 'Bench CA' });
  const started = performance.now();
  for (const pem of csrs) {
    const csr = parseCsr(pem);
    await signCertificate(
      {
        serial: randomSerial(),
        issuer,
        subject: buildName(csr.subject),
        subjectPublicKeyInfo: csr.publicKeySpki,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86400_000),
        extensions: [basicConstraints(false), keyUsage([KeyUsageFlags.digitalSignature]), subjectKeyIdentifier(keyIdentifier(csr.publicKeySpki))],
      },
      key,
    );
  }
  return csrs.length / ((performance.now() - started) / 1000);
}

async function crl(): Promise<void> {
  const sizes = option('sizes', '1000,10000,50000').split(',').map(Number);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer = buildName({ commonName: 'Bench CA' });
  for (const size of sizes) {
    const entries: CrlEntry[] = Array.from({ length: size }, () => ({ serial: randomBytes(20), revokedAt: new Date(), reason: 'keyCompromise' }));
    const started = performance.now();
    const der = await signCrl(
      { issuer, issuerKeyId: randomBytes(20), crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86400_000), entries },
      key,
    );
    const ms = performance.now() - started;
    console.log(`crl: ${size} entries → ${(der.length / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms (${((ms * 1000) / size).toFixed(1)} µs/entry)`);
  }
}

/** A free TCP port on the loopback interface (for a child process that takes a port number). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** openssl's date format in index.txt: YYMMDDHHMMSSZ (UTCTime). */
function indexTime(iso: string): string {
  return new Date(iso).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

/** An `openssl ocsp -index … -port` responder, and the files it serves from. */
interface OpensslResponder {
  url: string;
  stop(): void;
}

/**
 * Writes what `openssl ocsp -index` serves from: the CA, an index.txt of the issued serials, and a responder key
 * and certificate of the same kind as ours (EC P-256, id-kp-OCSPSigning; self-signed: openssl signs with whatever
 * it is given, and what is measured is the serving).
 */
function prepareOpensslResponder(dir: string, caPem: string, issued: { serial: string; notAfter: string; subject: string }[]): void {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('ca.pem'), caPem);
  // index.txt: status, expiry, revocation time (empty), serial (upper-case hex), file name, subject.
  fs.writeFileSync(file('index.txt'), issued.map((c) => `V\t${indexTime(c.notAfter)}\t\t${c.serial.toUpperCase()}\tunknown\t/${c.subject.replace(/, /g, '/')}\n`).join(''));
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('rkey.pem'), '-subj', '/CN=openssl OCSP responder', '-days', '2', '-addext', 'extendedKeyUsage=OCSPSigning', '-addext', 'keyUsage=critical,digitalSignature', '-out', file('rsigner.pem')], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
}

/**
 * Starts `openssl ocsp -index … -port` (one process, as openssl runs it by default) and waits until it accepts
 * connections. A fresh one per timed run: OpenSSL 3.0's responder spins forever on a connection closed before it
 * sent a request, which a load generator leaves behind when it stops mid-connect.
 */
async function startOpensslResponder(dir: string): Promise<OpensslResponder> {
  const file = (name: string) => path.join(dir, name);
  const port = await freePort();
  // It logs every request to stderr: to a file, since this process blocks while wrk runs and a pipe would fill.
  const log = file(`openssl-${port}.log`);
  const logFd = fs.openSync(log, 'w');
  const child: ChildProcess = spawn('openssl', ['ocsp', '-index', file('index.txt'), '-port', String(port), '-rsigner', file('rsigner.pem'), '-rkey', file('rkey.pem'), '-CA', file('ca.pem'), '-nmin', '60', '-ignore_err'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', logFd],
  });
  fs.closeSync(logFd);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  // Ready once it says so (a probe connection would wedge it, see above).
  for (let waited = 0; !fs.readFileSync(log, 'utf8').includes('waiting for OCSP client connections'); waited += 20) {
    if (exited !== null || waited > 10_000) throw new Error(`openssl ocsp did not start: ${fs.readFileSync(log, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: () => {
      child.kill('SIGKILL');
      fs.rmSync(log, { force: true });
    },
  };
}

/**
 * The platform's ceiling, measured in the same run: a bare node:http server (this Node.js, its own process) that
 * answers every POST with a fixed body of the size of our answers, doing nothing else.
 */
async function startBareNodeServer(bodyLength: number): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const script =
    `const body = Buffer.alloc(${bodyLength}, 1);` +
    "require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, ['Content-Type', 'application/ocsp-response', 'Content-Length', String(body.length)]); res.end(body); }); })" +
    `.listen(${port}, '127.0.0.1', () => console.log('listening'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`bare node:http server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill('SIGKILL') };
}

/** One wrk run: requests per second, latency percentiles and what went wrong. */
interface WrkRun {
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  failures: string[];
}

/**
 * A wrk script that sends prepared POST bodies (one hex-encoded DER request per line of `bodiesFile`) in turn, each
 * connection from its own place in the list. It skips wrk's connectivity probe (a connection opened and closed
 * without a request), which wedges OpenSSL 3.0's responder.
 */
function wrkPostScript(bodiesFile: string, urlPath: string): string {
  return `-- Generated by bench/bench.ts
wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end
local requests = {}
local turn = 0
function init(args)
  for line in io.lines(${JSON.stringify(bodiesFile)}) do
    local body = (line:gsub('..', function(cc) return string.char(tonumber(cc, 16)) end))
    requests[#requests + 1] = wrk.format('POST', ${JSON.stringify(urlPath)}, { ['Content-Type'] = 'application/ocsp-request' }, body)
  end
  turn = math.random(#requests) - 1
end
function request()
  turn = turn % #requests + 1
  return requests[turn]
end
`;
}

function wrkDurationMs(value: string, unit: string): number {
  return Number(value) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[unit];
}

/** Runs wrk (its own process: the client takes as little CPU from the servers as a client can) and reads its report. */
function runWrk(url: string, seconds: number, connections: number, threads: number, script?: string): WrkRun {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', ...(script ? ['-s', script] : []), url];
  const result = spawnSync('wrk', args, { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const out = `${result.stdout}${result.stderr}`;
  const total = /(\d+) requests in ([\d.]+)(us|ms|s)/.exec(out);
  const latency = (p: string) => {
    const match = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return match ? wrkDurationMs(match[1], match[2]) : NaN;
  };
  const failures: string[] = [];
  if (result.status !== 0 || !total) failures.push(`wrk failed (${result.status}): ${out.slice(0, 300)}`);
  const socketErrors = /Socket errors: (.*)/.exec(out);
  if (socketErrors) failures.push(`socket errors: ${socketErrors[1]}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) failures.push(`${non2xx[1]} non-2xx responses`);
  return {
    requests: total ? Number(total[1]) : 0,
    seconds: total ? wrkDurationMs(total[2], total[3]) / 1000 : seconds,
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    failures,
  };
}

/** Asks a responder with the openssl OCSP client; fails unless the answer is `good` and verifies. */
function checkWithOpensslClient(label: string, url: string, caFile: string, serial: string, trust: string[]): void {
  const check = spawnSync('openssl', ['ocsp', '-issuer', caFile, '-serial', `0x${serial}`, '-url', url, ...trust, '-timeout', '10'], { encoding: 'utf8' });
  const out = `${check.stdout}${check.stderr}`;
  if (!/Response verify OK/.test(out) || !/: good/.test(out)) throw new Error(`${label}: the sample answer does not verify as good:\n${out}`);
}

/** Sum of a Prometheus counter's samples whose labels match `labels`. */
async function counterSum(baseUrl: string, name: string, labels: RegExp): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && labels.test(line))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/**
 * OCSP responder throughput, ours against `openssl ocsp -index`, each in its own process on this machine, both
 * driven by wrk with the same prepared requests: one SHA-1 CertID of a random issued certificate, with a fresh
 * 16-octet nonce (every answer signed) or without (RFC 5019: answers any client may reuse).
 */
async function ocsp(): Promise<void> {
  const certificates = Number(option('certificates', '500'));
  const seconds = Number(option('seconds', '10'));
  const connections = Number(option('connections', '16'));
  const threads = Number(option('threads', '1'));
  if (spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error) {
    console.error('the ocsp benchmark drives both responders with wrk: install it first (Debian/Ubuntu: apt-get install wrk)');
    process.exit(2);
  }
  const service = await startService({});
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-ocsp-'));
  const admin = async (route: string, body: unknown) => {
    const res = await fetch(`${service.baseUrl}${route}`, { method: 'POST', headers: { ...bearer(service.adminKey), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await res.json()) as Record<string, string>;
    if (res.status !== 201) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  let openssl: OpensslResponder | undefined;
  let bare: { url: string; stop: () => void } | undefined;
  try {
    // Setup, not timed: a root, an issuing CA (local EC P-256 keys) and M device certificates.
    const root = await admin('/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
    const ca = await admin('/v1/authorities', { name: 'Bench Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Issuing' } });
    const issued: { serial: string; notAfter: string; subject: string }[] = [];
    await closedLoop(certificates, 16, async (i) => {
      const cert = await admin('/v1/certificates', { authorityId: ca.id, csr: buildCsr({ commonName: `ocsp-bench-${i}` }), profile: 'device', thingName: `ocsp-bench-${i}` });
      issued.push({ serial: cert.serial, notAfter: cert.notAfter, subject: `CN=ocsp-bench-${i}` });
    });
    prepareOpensslResponder(work, ca.certificatePem, issued);

    // The same prepared requests for both: 5000 per kind, each naming a random issued certificate.
    const { subject: issuerName, subjectPublicKeyInfo: issuerSpki } = certificateParts(pemDecode(ca.certificatePem, ['CERTIFICATE'])!);
    const bodies = (nonce: boolean) =>
      Array.from({ length: 5000 }, () => {
        const { serial } = issued[Math.floor(Math.random() * issued.length)];
        return encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from(serial, 'hex') }], nonce ? randomBytes(16) : undefined).toString('hex');
      }).join('\n');
    fs.writeFileSync(path.join(work, 'nonce.hex'), bodies(true));
    fs.writeFileSync(path.join(work, 'no-nonce.hex'), bodies(false));

    // Both answer "good" to the openssl client, each verifiable with its responder certificate.
    const caFile = path.join(work, 'ca.pem');
    const chainFile = path.join(work, 'chain.pem');
    fs.writeFileSync(chainFile, ca.chainPem);
    checkWithOpensslClient('ours', `${service.baseUrl}/ocsp`, caFile, issued[0].serial, ['-CAfile', chainFile]);
    const sampleAnswer = Buffer.from(await (await fetch(`${service.baseUrl}/ocsp`, { method: 'POST', headers: { 'Content-Type': 'application/ocsp-request' }, body: Buffer.from(fs.readFileSync(path.join(work, 'no-nonce.hex'), 'utf8').split('\n')[0], 'hex') })).arrayBuffer());
    bare = await startBareNodeServer(sampleAnswer.length);
    openssl = await startOpensslResponder(work);
    checkWithOpensslClient('openssl', openssl.url, caFile, issued[0].serial, ['-VAfile', path.join(work, 'rsigner.pem')]);
    openssl.stop();

    type Mode = { server: 'ours' | 'openssl' | 'healthz' | 'bare'; nonce?: boolean };
    const modes: Mode[] = [
      { server: 'ours', nonce: true },
      { server: 'openssl', nonce: true },
      { server: 'ours', nonce: false },
      { server: 'openssl', nonce: false },
      { server: 'healthz' },
      { server: 'bare' },
    ];
    const label = (m: Mode) => (m.server === 'healthz' ? 'ours GET /healthz' : m.server === 'bare' ? 'bare node:http' : `${m.server}/${m.nonce ? 'nonce' : 'no-nonce'}`);
    const scripts = new Map<string, string>();
    const scriptFor = (bodiesFile: string, urlPath: string) => {
      const key = `${bodiesFile} ${urlPath}`;
      if (!scripts.has(key)) {
        const file = path.join(work, `script-${scripts.size}.lua`);
        fs.writeFileSync(file, wrkPostScript(path.join(work, bodiesFile), urlPath));
        scripts.set(key, file);
      }
      return scripts.get(key)!;
    };
    const runOnce = async (m: Mode, runSeconds: number): Promise<WrkRun> => {
      if (m.server === 'healthz') return runWrk(`${service.baseUrl}/healthz`, runSeconds, connections, threads);
      if (m.server === 'bare') return runWrk(bare!.url, runSeconds, connections, threads, scriptFor('no-nonce.hex', '/'));
      const bodiesFile = m.nonce ? 'nonce.hex' : 'no-nonce.hex';
      if (m.server === 'ours') return runWrk(`${service.baseUrl}/ocsp`, runSeconds, connections, threads, scriptFor(bodiesFile, '/ocsp'));
      openssl = await startOpensslResponder(work);
      try {
        return runWrk(openssl.url, runSeconds, connections, threads, scriptFor(bodiesFile, '/'));
      } finally {
        openssl.stop();
        openssl = undefined;
      }
    };

    // Warm-up (JIT, the delegated signer, the cache of signed answers to nonce-less requests); not counted.
    for (const m of modes) await runOnce(m, 2);
    const refusedBefore = await counterSum(service.baseUrl, 'fleetpki_ocsp_responses_total', /status="(?!successful)/);

    // Timed in halves, in the order A B C D H N N H D C B A, so a drift during the run weighs on every mode alike.
    const runs = new Map<string, WrkRun[]>(modes.map((m) => [label(m), []]));
    for (const m of [...modes, ...[...modes].reverse()]) runs.get(label(m))!.push(await runOnce(m, seconds / 2));
    const refused = (await counterSum(service.baseUrl, 'fleetpki_ocsp_responses_total', /status="(?!successful)/)) - refusedBefore;

    console.log(`ocsp benchmark: ${certificates} certificates; POST of one SHA-1 CertID for a random one; wrk, ${threads} thread(s), ${connections} connections; ${seconds} s per mode in two halves`);
    console.log(
      `  ours: the service in its own process (SQLite, local keys); openssl: ${spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim()}, ` +
        `\`openssl ocsp -index\` (one process, HTTP/1.0, a connection per request; restarted for each run); ${os.cpus().length} CPUs shared with wrk`,
    );
    const rates: Record<string, number> = {};
    let failed = refused > 0;
    for (const [name, parts] of runs) {
      const requests = parts.reduce((sum, r) => sum + r.requests, 0);
      const secs = parts.reduce((sum, r) => sum + r.seconds, 0);
      const failures = parts.flatMap((r) => r.failures);
      rates[name] = requests / secs;
      failed ||= failures.length > 0;
      console.log(
        `  ${name.padEnd(17)}: ${requests} in ${secs.toFixed(1)} s = ${rates[name].toFixed(0)}/s (halves ${parts.map((r) => (r.requests / r.seconds).toFixed(0)).join(', ')}), ` +
          `latency p50 ${Math.max(...parts.map((r) => r.p50Ms)).toFixed(2)} ms, p99 ${Math.max(...parts.map((r) => r.p99Ms)).toFixed(2)} ms, ${failures.length ? failures.join('; ') : 'no failures'}`,
      );
    }
    console.log(`  our answers other than "successful" during the timed runs: ${refused}`);
    console.log(`  ratio ours/openssl with nonce    = ${(rates['ours/nonce'] / rates['openssl/nonce']).toFixed(2)} (every answer signed by both)`);
    console.log(`  ratio ours/openssl without nonce = ${(rates['ours/no-nonce'] / rates['openssl/no-nonce']).toFixed(2)} (goal >= 5)`);
    console.log(`  (references: the service's no-op route /healthz, through the framework, reaches ${(rates['ours GET /healthz'] / rates['openssl/no-nonce']).toFixed(2)}x openssl's rate here;`);
    console.log(`   a bare node:http server answering a fixed body of the same size, ${(rates['bare node:http'] / rates['openssl/no-nonce']).toFixed(2)}x: the ceiling of any Node.js responder on this machine,`);
    console.log(`   of which ours without nonce reaches ${(rates['ours/no-nonce'] / rates['bare node:http']).toFixed(2)})`);
    if (failed) process.exitCode = 1;
  } finally {
    openssl?.stop();
    bare?.stop();
    service.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const benches: Record<string, () => Promise<void>> = { issuance, exchange, crl, ocsp };
const name = process.argv[2];
if (!benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]`);
  process.exit(2);
}
benches[name]().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
