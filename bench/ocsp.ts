import { randomBytes } from 'node:crypto';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { certificateParts } from '../src/pki/certificate';
import { buildCsr } from '../tools/csr-builder';
import { encodeOcspRequest } from '../tools/clients/ocsp-client';
import { pemDecode } from '../tools/clients/pem';
import { PG_ENV, temporaryDatabase } from '../scripts/lib/temporary-database';
import { machineFacts, writeResults, option, bearer, startService, closedLoop, freePort, WrkRun, wrkPostScript, runWrk, counterSum } from './support';

/** openssl's date format in index.txt: YYMMDDHHMMSSZ (UTCTime). */
export function indexTime(iso: string): string {
  return new Date(iso).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

/** An `openssl ocsp -index … -port` responder, and the files it serves from. */
export interface OpensslResponder {
  url: string;
  stop(): void;
}

/**
 * Writes what `openssl ocsp -index` serves from: the CA, an index.txt of the issued serials, and a responder key
 * and certificate of the same kind as ours (EC P-256, id-kp-OCSPSigning; self-signed: openssl signs with whatever
 * it is given, and what is measured is the serving).
 */
export function prepareOpensslResponder(dir: string, caPem: string, issued: { serial: string; notAfter: string; subject: string }[]): void {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('ca.pem'), caPem);
  // index.txt: status, expiry, revocation time (empty), serial (upper-case hex), file name, subject.
  fs.writeFileSync(file('index.txt'), issued.map((c) => `V\t${indexTime(c.notAfter)}\t\t${c.serial.toUpperCase()}\tunknown\t/${c.subject.replace(/, /g, '/')}\n`).join(''));
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('rkey.pem'), '-subj', '/CN=openssl OCSP responder', '-days', '2', '-addext', 'extendedKeyUsage=OCSPSigning', '-addext', 'keyUsage=critical,digitalSignature', '-out', file('rsigner.pem')], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
}

/**
 * Starts `openssl ocsp -index … -port -multi <processes>` (openssl's own pre-forked responder processes) and waits
 * until it accepts connections. A fresh one per timed run: OpenSSL 3.0's responder spins forever on a connection
 * closed before it sent a request, which a load generator leaves behind when it stops mid-connect.
 */
export async function startOpensslResponder(dir: string, processes = 1): Promise<OpensslResponder> {
  const file = (name: string) => path.join(dir, name);
  const port = await freePort();
  // It logs every request to stderr: to a file, since this process blocks while wrk runs and a pipe would fill.
  const log = file(`openssl-${port}.log`);
  const logFd = fs.openSync(log, 'w');
  const child: ChildProcess = spawn('openssl', ['ocsp', '-index', file('index.txt'), '-port', String(port), '-rsigner', file('rsigner.pem'), '-rkey', file('rkey.pem'), '-CA', file('ca.pem'), '-nmin', '60', '-ignore_err', ...(processes > 1 ? ['-multi', String(processes)] : [])], {
    cwd: dir,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  // Ready once it says so (a probe connection would wedge it, see above).
  // (-multi says "ACCEPT …" once its socket listens, before forking the responders that take connections from it.)
  for (let waited = 0; !/waiting for OCSP client connections|ACCEPT /.test(fs.readFileSync(log, 'utf8')); waited += 20) {
    if (exited !== null || waited > 10_000) throw new Error(`openssl ocsp did not start: ${fs.readFileSync(log, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: () => {
      // -multi puts itself and the responders it forks in a process group of its own (setpgid): stop them all.
      for (const target of [-child.pid!, child.pid!]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // no such group (one process), or already gone
        }
      }
      fs.rmSync(log, { force: true });
    },
  };
}

/**
 * The platform's ceiling, measured in the same run: a bare node:http server (this Node.js) that answers every POST
 * with a fixed body of the size of our answers, doing nothing else; as a node:cluster of `workers` processes when
 * more than one, as the service runs (src/cluster.ts).
 */
export async function startBareNodeServer(bodyLength: number, workers = 1): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const serve =
    `const body = Buffer.alloc(${bodyLength}, 1);` +
    "require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, ['Content-Type', 'application/ocsp-response', 'Content-Length', String(body.length)]); res.end(body); }); })" +
    `.listen(${port}, '127.0.0.1', () => process.send ? process.send('listening') : console.log('listening'));`;
  const script =
    workers === 1
      ? serve
      : "const cluster = require('node:cluster');" +
        `if (cluster.isPrimary) { let up = 0; for (let i = 0; i < ${workers}; i++) cluster.fork().on('message', () => ++up === ${workers} && console.log('listening')); } else { ${serve} }`;
  // A file, not -e: cluster workers run the primary's script.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-bare-')), 'bare.js');
  fs.writeFileSync(file, script);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`bare node:http server exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: () => {
      process.kill(-child.pid!, 'SIGKILL');
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    },
  };
}

/** Asks a responder with the openssl OCSP client; fails unless the answer is `good` and verifies. */
export function checkWithOpensslClient(label: string, url: string, caFile: string, serial: string, trust: string[]): void {
  const check = spawnSync('openssl', ['ocsp', '-issuer', caFile, '-serial', `0x${serial}`, '-url', url, ...trust, '-timeout', '10'], { encoding: 'utf8' });
  const out = `${check.stdout}${check.stderr}`;
  if (!/Response verify OK/.test(out) || !/: good/.test(out)) throw new Error(`${label}: the sample answer does not verify as good:\n${out}`);
}

/**
 * OCSP responder throughput on all cores: the service with WORKERS = --workers (default: the machine's CPUs; on
 * PostgreSQL when FLEET_PKI_TEST_PG_URL is set, else SQLite, which runs one process), against `openssl ocsp -index
 * -multi <workers>` and a bare node:http server as a node:cluster of as many workers, all driven by wrk with the same
 * prepared requests: one SHA-1 CertID of a random issued certificate, with a fresh 16-octet nonce (every answer
 * signed) or without (RFC 5019: answers any client may reuse). Results: bench/results/ocsp-<time>.json.
 */
export async function ocsp(): Promise<void> {
  const certificates = Number(option('certificates', '500'));
  const seconds = Number(option('seconds', '10'));
  const connections = Number(option('connections', '16'));
  const threads = Number(option('threads', '1'));
  const warmupSeconds = Number(option('warmup-seconds', '2'));
  const db = option('db', process.env[PG_ENV] ? 'postgres' : 'sqlite');
  if (db !== 'sqlite' && db !== 'postgres') throw new Error('--db must be sqlite or postgres');
  if (db === 'postgres' && !process.env[PG_ENV]) throw new Error(`--db postgres needs ${PG_ENV}`);
  // SQLite is one process (WORKERS must be 1 there): the references then run one process too.
  const workers = db === 'sqlite' ? 1 : Number(option('workers', String(os.availableParallelism())));
  if (spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error) {
    console.error('the ocsp benchmark drives both responders with wrk: install it first (Debian/Ubuntu: apt-get install wrk)');
    process.exit(2);
  }
  const database = db === 'postgres' ? await temporaryDatabase('postgres') : undefined;
  const service = await startService({
    WORKERS: String(workers),
    ...(database?.config.driver === 'postgres' ? { DATABASE_URL: database.config.url, FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex') } : {}),
  });
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
    bare = await startBareNodeServer(sampleAnswer.length, workers);
    openssl = await startOpensslResponder(work, workers);
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
      openssl = await startOpensslResponder(work, workers);
      try {
        return runWrk(openssl.url, runSeconds, connections, threads, scriptFor(bodiesFile, '/'));
      } finally {
        openssl.stop();
        openssl = undefined;
      }
    };

    // Warm-up (JIT, the delegated signer, the cache of signed answers to nonce-less requests); not counted.
    for (const m of modes) await runOnce(m, warmupSeconds);
    const refusedBefore = await counterSum(service.baseUrl, 'fleetpki_ocsp_responses_total', /status="(?!successful)/);

    // Timed in halves, in the order A B C D H N N H D C B A, so a drift during the run weighs on every mode alike.
    const runs = new Map<string, WrkRun[]>(modes.map((m) => [label(m), []]));
    for (const m of [...modes, ...[...modes].reverse()]) runs.get(label(m))!.push(await runOnce(m, seconds / 2));
    // With several workers each answers /metrics for itself: this count is one worker's, a lower bound.
    const refused = (await counterSum(service.baseUrl, 'fleetpki_ocsp_responses_total', /status="(?!successful)/)) - refusedBefore;

    const opensslVersion = spawnSync('openssl', ['version'], { encoding: 'utf8' }).stdout.trim();
    console.log(`ocsp benchmark: ${certificates} certificates; POST of one SHA-1 CertID for a random one; wrk, ${threads} thread(s), ${connections} connections; ${seconds} s per mode in two halves`);
    console.log(
      `  ours: the service, WORKERS=${workers} (${db === 'postgres' ? 'PostgreSQL' : 'SQLite'}, local keys); openssl: ${opensslVersion}, ` +
        `\`openssl ocsp -index${workers > 1 ? ` -multi ${workers}` : ''}\` (HTTP/1.0, a connection per request; restarted for each run); ` +
        `bare node:http: ${workers > 1 ? `a node:cluster of ${workers} workers` : 'one process'}; ${os.cpus().length} CPUs shared with wrk`,
    );
    const rates: Record<string, number> = {};
    const results: Record<string, unknown> = {};
    let failed = refused > 0;
    for (const [name, parts] of runs) {
      const requests = parts.reduce((sum, r) => sum + r.requests, 0);
      const secs = parts.reduce((sum, r) => sum + r.seconds, 0);
      const failures = parts.flatMap((r) => r.failures);
      rates[name] = requests / secs;
      failed ||= failures.length > 0;
      const p50Ms = Math.max(...parts.map((r) => r.p50Ms));
      const p99Ms = Math.max(...parts.map((r) => r.p99Ms));
      results[name] = { requests, seconds: secs, perSecond: rates[name], halves: parts.map((r) => r.requests / r.seconds), p50Ms, p99Ms, failures };
      console.log(
        `  ${name.padEnd(17)}: ${requests} in ${secs.toFixed(1)} s = ${rates[name].toFixed(0)}/s (halves ${parts.map((r) => (r.requests / r.seconds).toFixed(0)).join(', ')}), ` +
          `latency p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms, ${failures.length ? failures.join('; ') : 'no failures'}`,
      );
    }
    const ratios = {
      oursOverOpensslNonce: rates['ours/nonce'] / rates['openssl/nonce'],
      oursOverOpensslNoNonce: rates['ours/no-nonce'] / rates['openssl/no-nonce'],
      oursOverBareNoNonce: rates['ours/no-nonce'] / rates['bare node:http'],
      healthzOverOpenssl: rates['ours GET /healthz'] / rates['openssl/no-nonce'],
      bareOverOpenssl: rates['bare node:http'] / rates['openssl/no-nonce'],
    };
    console.log(`  our answers other than "successful" during the timed runs (one worker's count): ${refused}`);
    console.log(`  ratio ours/openssl with nonce    = ${ratios.oursOverOpensslNonce.toFixed(2)} (every answer signed by both)`);
    console.log(`  ratio ours/openssl without nonce = ${ratios.oursOverOpensslNoNonce.toFixed(2)} (goal >= 5)`);
    console.log(`  ratio ours/bare node:http without nonce = ${ratios.oursOverBareNoNonce.toFixed(2)} (goal >= 0.85; the bare server answers a fixed body of the same size, the ceiling of any Node.js responder here)`);
    console.log(`  (references: /healthz, through the framework, ${ratios.healthzOverOpenssl.toFixed(2)}x openssl without nonce; bare node:http ${ratios.bareOverOpenssl.toFixed(2)}x)`);
    const settings = { certificates, seconds, warmupSeconds, connections, threads, db, workers, openssl: opensslVersion };
    const file = writeResults('ocsp', { benchmark: 'ocsp', at: new Date().toISOString(), machine: machineFacts(), settings, rates: results, ratios, refused });
    console.log(`  results: ${path.relative(process.cwd(), file)}`);
    if (failed) process.exitCode = 1;
  } finally {
    openssl?.stop();
    bare?.stop();
    service.stop();
    // The service's workers close their connections on SIGTERM; DROP … WITH (FORCE) ends any still open.
    await new Promise((r) => setTimeout(r, 1000));
    await database?.drop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
