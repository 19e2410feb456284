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
 *   ocsp [--certificates M] [--count N] [--concurrency C] [--warmup W]
 *       OCSP POST requests per second, each for a random one of M certificates the service issued (default 500), with
 *       a fresh nonce per request (always signed) and without (reusable answers), against the service (its own process,
 *       SQLite, local keys) and, in the same run with the same HTTP client, against `openssl ocsp -index` (its own
 *       process) serving the same CA from an index.txt of the same serials with an openssl-made P-256 responder key.
 *       The four runs are interleaved in halves; reports requests/s, p50/p95 latency, failures, and ours/openssl.
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
import { buildCsr } from '../test/support/csr-builder';
import { generateApiKey } from '../src/auth/api-key-secret';
import { bearer } from '../test/support/test-app';
import { signCrl, CrlEntry } from '../src/pki/crl';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';
import { pemDecode } from '../src/pki/der';
import { signX5cJwt } from '../src/pki/jws';
import { encodeOcspRequest, ocspResponseStatus } from '../src/pki/ocsp';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : fallback;
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

/** Starts `openssl ocsp -index … -port` (one process, as openssl runs it by default) and waits until it accepts connections. */
async function startOpensslResponder(dir: string, caPem: string, issued: { serial: string; notAfter: string; subject: string }[]): Promise<{ url: string; stop: () => void }> {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('ca.pem'), caPem);
  // index.txt: status, expiry, revocation time (empty), serial (upper-case hex), file name, subject.
  fs.writeFileSync(file('index.txt'), issued.map((c) => `V\t${indexTime(c.notAfter)}\t\t${c.serial.toUpperCase()}\tunknown\t/${c.subject.replace(/, /g, '/')}\n`).join(''));
  // The same kind of responder as ours: an EC P-256 key and a certificate with id-kp-OCSPSigning (self-signed: openssl
  // signs with whatever it is given; what is measured is the serving).
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('rkey.pem'), '-subj', '/CN=openssl OCSP responder', '-days', '2', '-addext', 'extendedKeyUsage=OCSPSigning', '-addext', 'keyUsage=critical,digitalSignature', '-out', file('rsigner.pem')], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
  const port = await freePort();
  const child: ChildProcess = spawn('openssl', ['ocsp', '-index', file('index.txt'), '-port', String(port), '-rsigner', file('rsigner.pem'), '-rkey', file('rkey.pem'), '-CA', file('ca.pem'), '-nmin', '60', '-ignore_err'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    // It logs every request to stderr; keep reading it so the pipe never fills.
    child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('waiting for OCSP client connections') && resolve());
    child.once('exit', (code) => reject(new Error(`openssl ocsp exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill('SIGTERM') };
}

/**
 * A minimal HTTP/1.1 client over one TCP connection, one request in flight: it writes prepared request bytes and reads
 * the response by Content-Length, keeping the connection when the server allows (ours) and reconnecting when it
 * closes it (openssl's responder answers HTTP/1.0 and closes). Much lighter than node:http, so on a small machine the
 * client takes less CPU from the servers it measures; both servers are measured with it.
 */
class RawHttpConnection {
  private socket?: net.Socket;

  constructor(private readonly url: URL) {}

  static request(url: URL, method: 'GET' | 'POST', body?: Buffer): Buffer {
    const headers = [`${method} ${url.pathname} HTTP/1.1`, `Host: ${url.host}`];
    if (body) headers.push('Content-Type: application/ocsp-request', `Content-Length: ${body.length}`);
    return Buffer.concat([Buffer.from(`${headers.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
  }

  /** Sends one prepared request; answers the status code and body. */
  async send(request: Buffer): Promise<{ status: number; body: Buffer }> {
    if (!this.socket || this.socket.destroyed) this.socket = await this.connect();
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      let buffer: Buffer = Buffer.alloc(0);
      let headerEnd = -1;
      let length = -1;
      let status = 0;
      let keepAlive = true;
      const finish = (err?: Error) => {
        socket.off('data', onData).off('end', onEnd).off('error', finish);
        if (err) return reject(err);
        if (!keepAlive) {
          socket.destroy();
          this.socket = undefined;
        }
        resolve({ status, body: buffer.subarray(headerEnd + 4, length < 0 ? undefined : headerEnd + 4 + length) });
      };
      const onData = (chunk: Buffer) => {
        buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
        if (headerEnd < 0) {
          headerEnd = buffer.indexOf('\r\n\r\n');
          if (headerEnd < 0) return;
          const head = buffer.toString('latin1', 0, headerEnd);
          status = Number(head.slice(9, 12));
          length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? -1);
          keepAlive = head.startsWith('HTTP/1.1') ? !/\r\nconnection:\s*close/i.test(head) : /\r\nconnection:\s*keep-alive/i.test(head);
        }
        if (length >= 0 && buffer.length >= headerEnd + 4 + length) finish();
      };
      const onEnd = () => {
        keepAlive = false;
        if (headerEnd < 0) finish(new Error('connection closed before a response'));
        else finish();
      };
      socket.on('data', onData).on('end', onEnd).on('error', finish);
      socket.write(request);
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(this.url.port), this.url.hostname, () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.setNoDelay(true);
      socket.once('error', reject);
    });
  }
}

/** `total` prepared requests sent by `concurrency` connections, each one request at a time (closed loop). */
async function rawClosedLoop(url: URL, total: number, concurrency: number, request: (i: number) => Buffer, check: (status: number, body: Buffer) => string | undefined, failures: string[]): Promise<{ seconds: number; latenciesMs: number[] }> {
  const connections = Array.from({ length: Math.min(concurrency, total) }, () => new RawHttpConnection(url));
  const free = [...connections];
  try {
    return await closedLoop(total, concurrency, async (i) => {
      // closedLoop keeps at most `concurrency` calls in flight: there is always a free connection.
      const connection = free.pop()!;
      try {
        const { status, body } = await connection.send(request(i));
        const problem = check(status, body);
        if (problem) failures.push(problem);
      } catch (err) {
        failures.push((err as Error).message);
      } finally {
        free.push(connection);
      }
    });
  } finally {
    for (const connection of connections) connection.close();
  }
}

/**
 * OCSP responder throughput, ours against `openssl ocsp -index`, both in their own process on this machine, both
 * asked by this process with the same client for the same requests: one CertID (SHA-1) of a random issued certificate,
 * with a fresh 16-octet nonce (each answer signed) or without (answers any client may reuse).
 */
async function ocsp(): Promise<void> {
  const certificates = Number(option('certificates', '500'));
  const count = Number(option('count', '10000'));
  const concurrency = Number(option('concurrency', '16'));
  const warmup = Number(option('warmup', '2000'));
  const service = await startService({});
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-ocsp-'));
  let openssl: { url: string; stop: () => void } | undefined;
  const admin = async (route: string, body: unknown) => {
    const res = await fetch(`${service.baseUrl}${route}`, { method: 'POST', headers: { ...bearer(service.adminKey), 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const json = (await res.json()) as Record<string, string>;
    if (res.status !== 201) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  try {
    // Setup, not timed: a root, an issuing CA (local EC P-256 keys) and M device certificates.
    const root = await admin('/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
    const ca = await admin('/v1/authorities', { name: 'Bench Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Issuing' } });
    const issued: { serial: string; notAfter: string; subject: string }[] = [];
    await closedLoop(certificates, 16, async (i) => {
      const cert = await admin('/v1/certificates', { authorityId: ca.id, csr: buildCsr({ commonName: `ocsp-bench-${i}` }), profile: 'device', thingName: `ocsp-bench-${i}` });
      issued.push({ serial: cert.serial, notAfter: cert.notAfter, subject: `CN=ocsp-bench-${i}` });
    });
    const { subject: issuerName, subjectPublicKeyInfo: issuerSpki } = certificateParts(pemDecode(ca.certificatePem, ['CERTIFICATE'])!);
    const requestFor = (nonce: boolean) => {
      const { serial } = issued[Math.floor(Math.random() * issued.length)];
      return encodeOcspRequest([{ hash: 'sha1', issuerName, issuerSpki, serial: Buffer.from(serial, 'hex') }], nonce ? randomBytes(16) : undefined);
    };
    openssl = await startOpensslResponder(work, ca.certificatePem, issued);

    // Both answer "good" for an issued serial, each verifiable with its responder certificate.
    const servers = { ours: new URL(`${service.baseUrl}/ocsp`), openssl: new URL(openssl.url) };
    const chainFile = path.join(work, 'chain.pem');
    fs.writeFileSync(chainFile, ca.chainPem);
    for (const [label, url] of Object.entries(servers)) {
      const request = requestFor(true);
      const connection = new RawHttpConnection(url);
      const answer = await connection.send(RawHttpConnection.request(url, 'POST', request));
      connection.close();
      fs.writeFileSync(path.join(work, `${label}-req.der`), request);
      fs.writeFileSync(path.join(work, `${label}-resp.der`), answer.body);
      const trust = label === 'ours' ? ['-CAfile', chainFile] : ['-VAfile', path.join(work, 'rsigner.pem')];
      const check = spawnSync('openssl', ['ocsp', '-reqin', path.join(work, `${label}-req.der`), '-respin', path.join(work, `${label}-resp.der`), ...trust, '-resp_text'], { encoding: 'utf8' });
      const out = `${check.stdout}${check.stderr}`;
      if (!/Response verify OK/.test(out) || !/Cert Status: good/.test(out)) throw new Error(`${label}: the sample answer does not verify as good:\n${out}`);
    }

    type Mode = { server: 'ours' | 'openssl'; nonce: boolean };
    const modes: Mode[] = [
      { server: 'ours', nonce: true },
      { server: 'openssl', nonce: true },
      { server: 'ours', nonce: false },
      { server: 'openssl', nonce: false },
    ];
    const label = (m: Mode) => `${m.server}/${m.nonce ? 'nonce' : 'no-nonce'}`;
    const failures: Record<string, string[]> = Object.fromEntries([...modes.map((m) => [label(m), []]), ['healthz', []]]);
    const okOcsp = (status: number, body: Buffer) => (status !== 200 ? `HTTP ${status}` : ocspResponseStatus(body) !== 0 ? `OCSP status ${ocspResponseStatus(body)}` : undefined);
    const runOnce = (m: Mode, total: number) => {
      // Prepared before the clock starts: the requests are the client's work, not the server's.
      const requests = Array.from({ length: total }, () => RawHttpConnection.request(servers[m.server], 'POST', requestFor(m.nonce)));
      return rawClosedLoop(servers[m.server], total, concurrency, (i) => requests[i], okOcsp, failures[label(m)]);
    };
    // Reference: the service's cheapest route (GET /healthz, no database) through the same client: the HTTP ceiling here.
    const healthz = new URL(`${service.baseUrl}/healthz`);
    const healthzRequest = RawHttpConnection.request(healthz, 'GET');
    const runHealthz = (total: number) => rawClosedLoop(healthz, total, concurrency, () => healthzRequest, (status) => (status === 200 ? undefined : `HTTP ${status}`), failures.healthz);

    // Warm-up (JIT, connections, the delegated signer, cached answers for the nonce-less requests); not counted.
    for (const m of modes) await runOnce(m, warmup);
    await runHealthz(warmup);
    for (const list of Object.values(failures)) list.length = 0;

    // Timed in halves, in the order A B C D H H D C B A, so a drift during the run weighs on every mode alike.
    type Run = { seconds: number; latenciesMs: number[] };
    const half = Math.floor(count / 2);
    const runs: Record<string, Run[]> = Object.fromEntries([...modes.map((m) => [label(m), []]), ['healthz', []]]);
    for (const m of modes) runs[label(m)].push(await runOnce(m, half));
    runs.healthz.push(await runHealthz(half), await runHealthz(half));
    for (const m of [...modes].reverse()) runs[label(m)].push(await runOnce(m, half));
    const combine = (parts: Run[]): Run => ({ seconds: parts.reduce((sum, r) => sum + r.seconds, 0), latenciesMs: parts.flatMap((r) => r.latenciesMs) });

    console.log(`ocsp benchmark: ${certificates} certificates; POST of one SHA-1 CertID for a random one; ${concurrency} connections, one request in flight each; ${warmup} warm-up requests per mode`);
    console.log(`  ours: the service in its own process (SQLite, local keys); openssl: ${spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim()}, \`openssl ocsp -index\` (one process, HTTP/1.0, a connection per request); ${os.cpus().length} CPUs shared with this client`);
    const rates: Record<string, number> = {};
    for (const m of modes) rates[label(m)] = summary(`  ${label(m).padEnd(17)}`, half * 2, combine(runs[label(m)]), failures[label(m)]);
    const ceiling = summary(`  ${'ours GET /healthz'.padEnd(17)}`, half * 2, combine(runs.healthz), failures.healthz);
    console.log(`  ratio ours/openssl with nonce    = ${(rates['ours/nonce'] / rates['openssl/nonce']).toFixed(2)} (goal >= 5)`);
    console.log(`  ratio ours/openssl without nonce = ${(rates['ours/no-nonce'] / rates['openssl/no-nonce']).toFixed(2)} (goal >= 5)`);
    console.log(`  (the service's no-op route /healthz reaches ${(ceiling / rates['openssl/no-nonce']).toFixed(2)}x openssl's rate here: the ceiling of any route on this machine)`);
    if (Object.values(failures).some((list) => list.length)) process.exitCode = 1;
  } finally {
    openssl?.stop();
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
