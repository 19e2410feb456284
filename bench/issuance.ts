import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { signCertificate } from '../src/pki/certificate';
import { parseCsr } from '../src/pki/csr';
import { basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../src/pki/extensions';
import { randomSerial } from '../src/pki/serial';
import { buildCsr } from '../tools/csr-builder';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';
import { pemEncode } from '../src/pki/der';
import {
  option,
  bearer,
  referenceSignaturesPerSecond,
  startKmsStandIn,
  freePort,
  runWrk,
  startServiceProcess,
  ServiceProcess,
  processTreeMemory,
  processTreeCpuSeconds,
  machineBusyCpuSeconds,
  ProcessMemory,
  writeResults,
  machineFacts,
} from './support';

export async function issuance(): Promise<void> {
  const peer = option('peer', '');
  if (peer === 'cfssl') return issuanceVsCfssl();
  if (peer) throw new Error(`unknown --peer ${peer}: the peer this benchmark knows is cfssl`);
  const backend = option('backend', 'local') as 'local' | 'aws-kms' | 'pkcs11';
  if (!['local', 'aws-kms', 'pkcs11'].includes(backend)) throw new Error(`unknown --backend ${backend}: local, aws-kms or pkcs11`);
  const hsm = backend === 'pkcs11' ? softHsmForBench() : undefined;
  const kmsTps = Number(option('kms-tps', '300'));
  const kmsLatency = Number(option('kms-latency-ms', '20'));
  const count = Number(option('count', backend === 'aws-kms' ? String(kmsTps * 10) : '2000'));
  const concurrency = Number(option('concurrency', '32'));
  const kms = backend === 'aws-kms' ? await startKmsStandIn(kmsLatency, kmsTps) : undefined;
  // --db postgres: the KMS budget is then the replica-wide one (docs/limits.md, "Replica-wide budgets"): slots reserved
  // in the database in batches, so this measures what sharing the quota costs a single replica.
  const driver = option('db', 'sqlite') as 'sqlite' | 'postgres';
  const service = await startServiceProcess(
    driver,
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
      : (hsm?.env ?? {}),
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
    const csrs = Array.from({ length: count }, (_, i) => buildCsr({ commonName: `bench-${i}` }));
    const failures: string[] = [];
    // Warm-up: JIT, connection pools, signer cache (and, for KMS, the stand-in's initial burst allowance).
    const warmup = backend === 'aws-kms' ? Math.min(kmsTps, Math.floor(count / 5)) : Math.min(200, Math.floor(count / 5));
    let statsBefore: Awaited<ReturnType<NonNullable<typeof kms>['stats']>> | undefined;
    /** Root and issuing CA on `keys`, then `count` issuances under the issuing CA; returns the measured seconds. */
    const measure = async (keys: string, label: string): Promise<number> => {
      const root = await api('/v1/authorities', { name: `Bench Root ${label}`, type: 'root', keyBackend: keys, subject: { commonName: `Bench Root ${label}` } });
      const ca = await api('/v1/authorities', { name: `Bench Issuing ${label}`, type: 'intermediate', parentId: root.body.id, keyBackend: keys, subject: { commonName: `Bench Issuing ${label}` } });
      if (ca.status !== 201) throw new Error(`could not create the CA: ${JSON.stringify(ca.body)}`);
      const issueOne = async (i: number) => {
        const res = await api('/v1/certificates', { authorityId: ca.body.id, csr: csrs[i], profile: 'device', thingName: `bench-${label}-${i}` });
        if (res.status !== 201) failures.push(`${res.status} ${JSON.stringify(res.body)}`);
      };
      let next = 0;
      const run = async (until: number) => {
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (next < until) await issueOne(next++);
          }),
        );
      };
      await run(warmup);
      statsBefore = kms ? await kms.stats() : undefined;
      const started = performance.now();
      await run(count);
      return (performance.now() - started) / 1000;
    };
    const seconds = await measure(backend, backend);
    const measured = count - warmup;
    const rate = measured / seconds;
    console.log(`issuance (service process on ${driver === 'postgres' ? 'PostgreSQL' : 'SQLite'}, ${backend} keys, ${concurrency} concurrent clients): ${measured} certificates in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} certificates/s, ${failures.length} failed`);
    for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure.slice(0, 200)}`);
    const results: Record<string, unknown> = {
      benchmark: `issuance --backend ${backend}`,
      when: new Date().toISOString(),
      machine: machineFacts(),
      settings: { backend, driver, count, concurrency, warmup },
      measured,
      seconds,
      rate,
      failures: failures.length,
    };
    if (hsm) {
      // The honest reference: the same service process, the same CSRs and clients, with local keys.
      const localSeconds = await measure('local', 'local-reference');
      const localRate = measured / localSeconds;
      console.log(`reference: the same service with local keys = ${localRate.toFixed(0)} certificates/s`);
      console.log(`ratio pkcs11 (SoftHSM2, PKCS11_SESSIONS=${hsm.env.PKCS11_SESSIONS}) / local = ${(rate / localRate).toFixed(3)}`);
      results.references = { localKeysPerSecond: localRate, pkcs11OverLocal: rate / localRate, module: hsm.env.PKCS11_MODULE, sessions: Number(hsm.env.PKCS11_SESSIONS) };
    } else if (kms) {
      const after = await kms.stats();
      const throttled = after.throttled - (statsBefore?.throttled ?? 0);
      const signs = (after.calls.Sign ?? 0) - (statsBefore?.calls.Sign ?? 0);
      // The most the quota allowed in the window: the sustained rate for its duration plus whatever was left in
      // the bucket when it opened. Signatures used / that = the fraction of the quota the service managed to use.
      const allowed = kmsTps * seconds + (statsBefore?.tokens ?? 0);
      console.log(`KMS stand-in: quota ${kmsTps} TPS (token bucket, 1 s burst), latency ${kmsLatency} ms; ${signs} Sign calls, ${throttled} throttled (retried by the SDK)`);
      console.log(`fraction of the KMS quota used = ${rate.toFixed(0)} / ${kmsTps} TPS = ${(rate / kmsTps).toFixed(3)} (goal >= 0.95 with 0 failed)`);
      console.log(`  (counting the stand-in's unused initial 1 s burst as well: ${measured} / ${allowed.toFixed(0)} allowed = ${(measured / allowed).toFixed(3)})`);
      results.kms = { quotaTps: kmsTps, latencyMs: kmsLatency, signCalls: signs, throttled, fractionOfQuota: rate / kmsTps, fractionOfAllowed: measured / allowed };
    } else {
      const reference = referenceSignaturesPerSecond();
      const pkiOnly = await pkiOnlyPerSecond(csrs.slice(0, 2000));
      console.log(`reference: raw ECDSA P-256 signatures (node:crypto, one thread) = ${reference.toFixed(0)}/s`);
      console.log(`pki only (parse + check CSR, encode + sign certificate; no HTTP, no database) = ${pkiOnly.toFixed(0)}/s`);
      console.log(`ratio issuance/reference = ${(rate / reference).toFixed(4)}; issuance/pki-only = ${(rate / pkiOnly).toFixed(3)}`);
      results.references = { rawSignaturesPerSecond: reference, pkiOnlyPerSecond: pkiOnly, issuanceOverReference: rate / reference, issuanceOverPkiOnly: rate / pkiOnly };
    }
    console.log(`results: ${path.relative(process.cwd(), writeResults('issuance', results))}`);
    if (failures.length) process.exitCode = 1;
  } finally {
    await service.stop();
    kms?.stop();
    hsm?.cleanup();
  }
}

/**
 * --backend pkcs11: a SoftHSM2 token of the bench's own (temporary token directory, random PIN in a 0600 file), or
 * SOFTHSM2_MODULE / the Debian path for the module. PKCS11_SESSIONS from --sessions (default 4).
 */
function softHsmForBench(): { env: Record<string, string>; cleanup(): void } {
  const module = [process.env.SOFTHSM2_MODULE, '/usr/lib/softhsm/libsofthsm2.so'].find((m) => m && fs.existsSync(m));
  if (!module) throw new Error('--backend pkcs11 needs SoftHSM2 (apt-get install softhsm2) or SOFTHSM2_MODULE');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-hsm-'));
  fs.mkdirSync(path.join(dir, 'tokens'));
  const conf = path.join(dir, 'softhsm2.conf');
  fs.writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const pin = randomBytes(8).toString('hex');
  const pinFile = path.join(dir, 'pin');
  fs.writeFileSync(pinFile, pin, { mode: 0o600 });
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 'fleet-bench', '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr}`);
  return {
    env: { SOFTHSM2_CONF: conf, PKCS11_MODULE: module, PKCS11_TOKEN_LABEL: 'fleet-bench', PKCS11_PIN_FILE: pinFile, PKCS11_SESSIONS: option('sessions', '4') },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * The X.509 work of one issuance alone, on this thread, for seeing how much HTTP and the database add. The first
 * quarter of `csrs` (at most 500) warms the JIT up untimed: cold, the same code measured about a third of its speed.
 */
export async function pkiOnlyPerSecond(csrs: string[]): Promise<number> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer = buildName({ commonName: 'Bench CA' });
  const issueOne = async (pem: string) => {
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
  };
  const warmup = Math.min(500, Math.floor(csrs.length / 4));
  for (const pem of csrs.slice(0, warmup)) await issueOne(pem);
  const timed = csrs.slice(warmup);
  const started = performance.now();
  for (const pem of timed) await issueOne(pem);
  return timed.length / ((performance.now() - started) / 1000);
}

// ---------------------------------------------------------------------------------------------------------------
// --peer cfssl: our service against `cfssl serve` (docs/benchmarks.md, "Issuance vs CFSSL")
// ---------------------------------------------------------------------------------------------------------------

const ECDSA_WITH_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');

function derTlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

/**
 * A PKCS#10 request for a fresh P-256 key with CN = `commonName`, encoded by hand: the same bytes tools/csr-builder
 * makes for a plain CSR, about three times faster, which matters when a run needs tens of thousands of them.
 */
export function fastP256Csr(commonName: string): string {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const cn = derTlv(0x30, Buffer.concat([Buffer.from('0603550403', 'hex'), derTlv(0x0c, Buffer.from(commonName, 'utf8'))]));
  const subject = derTlv(0x30, derTlv(0x31, cn));
  // version 0, subject, SPKI, empty attributes [0].
  const info = derTlv(0x30, Buffer.concat([Buffer.from('020100', 'hex'), subject, spki, Buffer.from('a000', 'hex')]));
  const signature = sign('sha256', info, privateKey);
  return pemEncode('CERTIFICATE REQUEST', derTlv(0x30, Buffer.concat([info, ECDSA_WITH_SHA256, derTlv(0x03, Buffer.concat([Buffer.from([0]), signature]))])));
}

/** Worker thread entry: makes workerData.count CSRs and posts them back as JSON-escaped strings (one pool line each). */
if (!isMainThread && (workerData as { fleetPkiCsrPool?: boolean } | null)?.fleetPkiCsrPool) {
  const { from, count } = workerData as { from: number; count: number };
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(JSON.stringify(fastP256Csr(`bench-device-${from + i}`)).slice(1, -1));
  parentPort!.postMessage(lines);
}

/** Appends `count` fresh CSRs (one per line, JSON-escaped PEM) to `file`, made by one worker thread per CPU. */
async function growCsrPool(file: string, from: number, count: number): Promise<void> {
  if (count <= 0) return;
  const workers = Math.max(1, Math.min(os.availableParallelism(), 8));
  const shares = Array.from({ length: workers }, (_, w) => Math.floor(((w + 1) * count) / workers) - Math.floor((w * count) / workers));
  let offset = from;
  const parts = await Promise.all(
    shares.map((share) => {
      const start = offset;
      offset += share;
      return new Promise<string[]>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: { fleetPkiCsrPool: true, from: start, count: share } });
        worker.once('message', (lines: string[]) => {
          resolve(lines);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    }),
  );
  fs.appendFileSync(file, parts.map((lines) => lines.join('\n') + '\n').join(''));
}

export interface Target {
  name: 'cfssl' | 'ours-sqlite' | 'ours-postgres';
  baseUrl: string;
  urlPath: string;
  headers: Record<string, string>;
  /** The body around the CSR (JSON-escaped PEM) and, when `middle` is given, the pool index; see wrkIssuanceScript. */
  before: string;
  middle?: string;
  after: string;
  successStatus: number;
  /** Next unused line of the CSR pool for this target: no CSR goes to a target twice. */
  cursor: number;
  service?: ServiceProcess;
  /** The peer's process (cfssl), whose CPU is counted as the service's is. */
  pid?: number;
}

/** What the wrk script reports for one run (bench/issuance.ts's done() writes it). */
interface ScriptReport {
  threads: { lines: number; sent: number; statuses: Record<string, number> }[];
}

const luaString = (value: string) => JSON.stringify(value);

/**
 * A wrk script that POSTs one request per pool line in [from, to): thread k of T sends lines from+k, from+k+T, …,
 * each once (it wraps only when it runs out, and says so), so no CSR is sent twice in a run. The body is
 * `before .. line .. after`, or `before .. line .. middle .. index .. after`: the CSR and, for ours, a thing name of
 * its own. It counts every
 * response status and, when wrk is done, writes the counts to `reportFile`.
 */
export function wrkIssuanceScript(t: Target, poolFile: string, from: number, to: number, threads: number, reportFile: string): string {
  const headers = Object.entries(t.headers)
    .map(([k, v]) => `[${luaString(k)}] = ${luaString(v)}`)
    .join(', ');
  return `-- Generated by bench/issuance.ts (--peer cfssl)
wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end
local all_threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(all_threads, thread)
end
requests = {}
sent = 0
lines = 0
statuses = {}
function init(args)
  local index = 0
  local headers = { ${headers} }
  for line in io.lines(${luaString(poolFile)}) do
    if index >= ${to} then break end
    if index >= ${from} and (index - ${from}) % ${threads} == id then
      requests[#requests + 1] = wrk.format('POST', ${luaString(t.urlPath)}, headers, ${luaString(t.before)} .. line .. ${t.middle === undefined ? '' : `${luaString(t.middle)} .. index .. `}${luaString(t.after)})
    end
    index = index + 1
  end
  lines = #requests
end
function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, reqs)
  local f = io.open(${luaString(reportFile)}, "w")
  f:write('{"threads":[')
  for i, thread in ipairs(all_threads) do
    if i > 1 then f:write(',') end
    f:write('{"lines":' .. thread:get("lines") .. ',"sent":' .. thread:get("sent") .. ',"statuses":{')
    local first = true
    for status, n in pairs(thread:get("statuses")) do
      if not first then f:write(',') end
      first = false
      f:write('"' .. status .. '":' .. n)
    end
    f:write('}}')
  end
  f:write(']}')
  f:close()
end
`;
}

interface TimedRun {
  requests: number;
  seconds: number;
  rate: number;
  p50Ms: number;
  p99Ms: number;
  successes: number;
  errors: number;
  statuses: Record<string, number>;
  socketErrors: number;
  /** Requests not answered within wrk's timeout (2 s); their answers still count by status when they come. */
  timeouts: number;
  /** Requests that reused a CSR already sent in this run (0 unless the pool was too small). */
  reused: number;
  failures: string[];
  /**
   * CPU seconds from just before wrk started to just after it ended (`wall` seconds): the target's process tree; the
   * PostgreSQL server's (ours-postgres only); the machine's (all cores).
   */
  cpu?: { target: number; database: number; machineBusy: number; wall: number };
}

/** One wrk run against a target over fresh pool lines; advances the target's cursor past what was used. */
function runTarget(t: Target, work: string, poolFile: string, poolSize: number, seconds: number, connections: number, threads: number): TimedRun {
  const reportFile = path.join(work, `report-${t.name}.json`);
  const scriptFile = path.join(work, `script-${t.name}.lua`);
  fs.rmSync(reportFile, { force: true });
  if (poolSize - t.cursor < threads * 10) throw new Error(`the CSR pool is used up for ${t.name} (cursor ${t.cursor} of ${poolSize})`);
  fs.writeFileSync(scriptFile, wrkIssuanceScript(t, poolFile, t.cursor, poolSize, threads, reportFile));
  const run = runWrk(`${t.baseUrl}${t.urlPath}`, seconds, connections, threads, scriptFile);
  const report: ScriptReport = fs.existsSync(reportFile) ? JSON.parse(fs.readFileSync(reportFile, 'utf8')) : { threads: [] };
  const statuses: Record<string, number> = {};
  for (const thread of report.threads) for (const [status, n] of Object.entries(thread.statuses)) statuses[status] = (statuses[status] ?? 0) + n;
  const successes = statuses[String(t.successStatus)] ?? 0;
  const reused = report.threads.reduce((sum, thread) => sum + Math.max(0, thread.sent - thread.lines), 0);
  // Every pool line up to the furthest one a thread reached is spent for this target.
  const furthest = Math.max(0, ...report.threads.map((thread) => Math.min(thread.sent, thread.lines)));
  t.cursor += furthest * threads;
  // wrk's socket errors: connect, read and write are failures; a timeout (no answer within wrk's 2 s) is not by
  // itself one, since the answer still arrives and is counted by its status above: reported apart, as slow requests.
  const socket = run.failures.find((f) => f.startsWith('socket errors'));
  const socketCount = (kind: string) => Number(new RegExp(`${kind} (\\d+)`).exec(socket ?? '')?.[1] ?? 0);
  const socketErrors = socketCount('connect') + socketCount('read') + socketCount('write');
  const timeouts = socketCount('timeout');
  const responses = Object.values(statuses).reduce((a, b) => a + b, 0);
  const failures = run.failures.filter((f) => !/non-2xx/.test(f) && !(f.startsWith('socket errors') && socketErrors === 0));
  if (!report.threads.length) failures.push('the wrk script wrote no report');
  return {
    requests: run.requests,
    seconds: run.seconds,
    rate: successes / run.seconds,
    p50Ms: run.p50Ms,
    p99Ms: run.p99Ms,
    successes,
    errors: responses - successes + socketErrors,
    statuses,
    socketErrors,
    timeouts,
    reused,
    failures,
  };
}

/** CPU seconds so far of a target's processes, of the PostgreSQL server (for ours-postgres), and of the machine. */
function cpuNow(t: Target): { target: number; database: number; machineBusy: number } {
  const pid = t.service?.pid ?? t.pid;
  // The oldest process named postgres is the server's postmaster; its children are the backends and helpers.
  const postmaster = t.service?.driver === 'postgres' ? Number(spawnSync('pgrep', ['-o', '-x', 'postgres'], { encoding: 'utf8' }).stdout?.trim() || NaN) : NaN;
  return {
    target: pid === undefined ? 0 : processTreeCpuSeconds(pid),
    // A local server is assumed (as FLEET_PKI_TEST_PG_URL names in CI); 0 when none is found.
    database: Number.isNaN(postmaster) ? 0 : processTreeCpuSeconds(postmaster),
    machineBusy: machineBusyCpuSeconds(),
  };
}

function toolVersion(command: string, args: string[]): string {
  const out = spawnSync(command, args, { encoding: 'utf8' });
  return out.error ? 'not installed' : `${out.stdout}${out.stderr}`.trim().split('\n')[0];
}

/** `cfssl` on the PATH, installing Debian's golang-cfssl when this runs as root; exits with a message otherwise. */
function ensureCfssl(): void {
  if (!spawnSync('cfssl', ['version'], { encoding: 'utf8' }).error) return;
  if (process.getuid?.() === 0) {
    console.log('cfssl is not installed: apt-get install -y golang-cfssl');
    const installed = spawnSync('apt-get', ['install', '-y', 'golang-cfssl'], { stdio: 'inherit' });
    if (installed.status === 0 && !spawnSync('cfssl', ['version']).error) return;
  }
  console.error('--peer cfssl needs the cfssl command (Debian/Ubuntu: apt-get install golang-cfssl; or go install github.com/cloudflare/cfssl/cmd/cfssl@latest)');
  process.exit(2);
}

/**
 * Writes a two-level P-256 CA made by openssl (root, and the issuing CA cfssl signs with) and a cfssl signing config
 * whose default profile matches our `device` profile (digital signature, client auth) with a 1-year expiry.
 */
function prepareCfsslCa(dir: string): void {
  const run = (args: string[]) => {
    const out = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`openssl ${args[0]} failed: ${out.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root-key.pem', '-out', 'root.pem', '-subj', '/CN=CFSSL Bench Root', '-days', '3650',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.csr', '-subj', '/CN=CFSSL Bench Issuing']);
  fs.writeFileSync(path.join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  run(['x509', '-req', '-in', 'ca.csr', '-CA', 'root.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-days', '1825', '-extfile', 'ca.ext', '-out', 'ca.pem']);
  fs.writeFileSync(path.join(dir, 'cfssl-config.json'), JSON.stringify({ signing: { default: { expiry: '8760h', usages: ['digital signature', 'client auth'] } } }));
}

/** `cfssl serve` with the CA of prepareCfsslCa and no database (no -db-config: it keeps no record of what it signs). */
async function startCfssl(dir: string, sampleCsrPem: string): Promise<{ baseUrl: string; pid: number; stop: () => void }> {
  const port = await freePort();
  const logFd = fs.openSync(path.join(dir, 'cfssl.log'), 'w');
  const child = spawn('cfssl', ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', 'ca.pem', '-ca-key', 'ca-key.pem', '-config', 'cfssl-config.json', '-loglevel', '3'], {
    cwd: dir,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let waited = 0; ; waited += 100) {
    if (child.exitCode !== null) throw new Error(`cfssl serve exited: ${fs.readFileSync(path.join(dir, 'cfssl.log'), 'utf8').slice(0, 500)}`);
    const res = await fetch(`${baseUrl}/api/v1/cfssl/sign`, { method: 'POST', body: JSON.stringify({ certificate_request: sampleCsrPem }) }).catch(() => undefined);
    if (res) {
      const body = (await res.json()) as { success?: boolean; result?: { certificate?: string } };
      if (res.status !== 200 || !body.success || !body.result?.certificate?.includes('BEGIN CERTIFICATE')) throw new Error(`cfssl refused a sample CSR: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
      return { baseUrl, pid: child.pid!, stop: () => child.kill('SIGTERM') };
    }
    if (waited > 15_000) throw new Error('cfssl serve did not answer within 15 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * fetch for idempotent GETs, tried again after a network error: while wrk ran (spawnSync) this process could not see
 * the service close an idle keep-alive connection, and the first request after it may go out on that dead socket.
 */
async function fetchRetrying(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Every certificate the service lists (paging GET /v1/certificates), and its certificate.issued audit events. */
async function checkConsistency(service: ServiceProcess, acknowledged: number): Promise<Record<string, unknown>> {
  const get = async (route: string) => {
    const res = await fetchRetrying(`${service.baseUrl}${route}`, { headers: bearer(service.adminKey) });
    if (res.status !== 200) throw new Error(`GET ${route}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<{ items: { serial?: string; details?: { serial?: string } }[]; nextCursor: string | null }>;
  };
  const pageAll = async (route: string, serialOf: (item: { serial?: string; details?: { serial?: string } }) => string | undefined) => {
    const serials: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(`${route}${route.includes('?') ? '&' : '?'}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const item of page.items) serials.push(serialOf(item) ?? '');
      cursor = page.nextCursor;
    } while (cursor);
    return serials;
  };
  const certificates = await pageAll('/v1/certificates', (c) => c.serial);
  const issuedEvents = await pageAll('/v1/audit?action=certificate.issued', (e) => e.details?.serial);
  const verify = (await (await fetchRetrying(`${service.baseUrl}/v1/audit/verify`, { headers: bearer(service.adminKey) })).json()) as { ok: boolean; checked: number };
  const distinctSerials = new Set(certificates).size;
  const ok = certificates.length >= acknowledged && distinctSerials === certificates.length && issuedEvents.length === certificates.length && verify.ok === true;
  return { ok, acknowledged, certificates: certificates.length, distinctSerials, issuedEvents: issuedEvents.length, auditVerify: verify };
}

async function issuanceVsCfssl(): Promise<void> {
  const seconds = Number(option('seconds', '10'));
  const connections = Number(option('connections', '32'));
  const threads = Number(option('threads', '2'));
  const warmupSeconds = Number(option('warmup-seconds', '3'));
  const workers = option('workers', '');
  for (const [name, value] of Object.entries({ seconds, connections, threads, warmupSeconds })) {
    if (!Number.isFinite(value) || value <= 0 || value > 100_000) throw new Error(`--${name} must be a positive number`);
  }
  if (workers && !/^[1-9][0-9]{0,2}$/.test(workers)) throw new Error('--workers must be a whole number from 1 to 999');
  if (spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error) {
    console.error('--peer cfssl drives both services with wrk: install it first (Debian/Ubuntu: apt-get install wrk)');
    process.exit(2);
  }
  ensureCfssl();
  const pg = Boolean(process.env.FLEET_PKI_TEST_PG_URL);
  if (!pg) console.log('NOTE: FLEET_PKI_TEST_PG_URL is not set: ours runs on SQLite only (set it for the PostgreSQL runs).');

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-cfssl-'));
  const poolFile = path.join(work, 'csrs.txt');
  fs.writeFileSync(poolFile, '');
  let poolSize = 0;
  const targets: Target[] = [];
  let cfssl: { baseUrl: string; pid: number; stop: () => void } | undefined;
  try {
    prepareCfsslCa(work);
    cfssl = await startCfssl(work, fastP256Csr('cfssl-sample'));
    targets.push({ name: 'cfssl', pid: cfssl.pid, baseUrl: cfssl.baseUrl, urlPath: '/api/v1/cfssl/sign', headers: { 'Content-Type': 'application/json' }, before: '{"certificate_request":"', after: '"}', successStatus: 200, cursor: 0 });
    // Ours: WORKERS passed through for PostgreSQL when given (SQLite keeps the service's default, one process).
    for (const driver of pg ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const)) {
      const service = await startServiceProcess(driver, workers && driver === 'postgres' ? { WORKERS: workers } : {});
      const target: Target = { name: `ours-${driver}`, baseUrl: service.baseUrl, urlPath: '/v1/certificates', headers: { 'Content-Type': 'application/json', ...bearer(service.adminKey) }, before: '', middle: '', after: '', successStatus: 201, cursor: 0, service };
      targets.push(target);
      const admin = async (body: unknown) => {
        const res = await fetch(`${service.baseUrl}/v1/authorities`, { method: 'POST', headers: target.headers, body: JSON.stringify(body) });
        const json = (await res.json()) as Record<string, string>;
        if (res.status !== 201) throw new Error(`${target.name}: creating a CA: ${res.status} ${JSON.stringify(json)}`);
        return json;
      };
      const root = await admin({ name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
      const ca = await admin({ name: 'Bench Issuing', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Issuing' } });
      target.before = `{"authorityId":"${ca.id}","profile":"device","csr":"`;
      target.middle = `","thingName":"bench-${driver}-`;
      target.after = '"}';
    }
    // Idle memory: started, CAs made, nothing else yet.
    await new Promise((r) => setTimeout(r, 2000));
    const idle = Object.fromEntries(targets.filter((t) => t.service).map((t) => [t.name, processTreeMemory(t.service!.pid)]));

    // Warm-up (JIT, pools, caches) on an initial pool; its rates size the rest of the pool. Not counted.
    poolSize = Math.ceil(4000 * warmupSeconds * 1.2);
    await growCsrPool(poolFile, 0, poolSize);
    const warmupRate: Record<string, number> = {};
    const acknowledged: Record<string, number> = {};
    const warmupFailures: string[] = [];
    for (const t of targets) {
      const run = runTarget(t, work, poolFile, poolSize, warmupSeconds, connections, threads);
      warmupRate[t.name] = run.rate;
      acknowledged[t.name] = run.successes;
      if (run.errors || run.failures.length) warmupFailures.push(`${t.name}: ${run.errors} errors ${JSON.stringify(run.statuses)} ${run.failures.join('; ')}`);
      console.log(`  warm-up ${t.name}: ${run.rate.toFixed(0)}/s, ${run.errors} errors${run.errors ? ` ${JSON.stringify(run.statuses)}` : ''}`);
    }
    // Enough distinct CSRs for every target's timed runs at 1.6x its warm-up rate (the fastest sets the size); topped
    // up between runs (never during one) should a target run faster than that.
    const ensurePool = async (t: Target, runSeconds: number, rate: number) => {
      const needed = t.cursor + Math.ceil(Math.max(rate, 200) * runSeconds * 1.6) + 1000;
      if (needed <= poolSize) return;
      const started = performance.now();
      await growCsrPool(poolFile, poolSize, needed - poolSize);
      console.log(`  CSR pool: ${poolSize} -> ${needed} distinct P-256 CSRs (${((needed - poolSize) / ((performance.now() - started) / 1000)).toFixed(0)}/s, worker threads; between runs)`);
      poolSize = needed;
    };
    for (const t of targets) await ensurePool(t, seconds, warmupRate[t.name]);

    // Timed in halves, in the order A B C C B A, so drift weighs on every target alike.
    const order = [...targets, ...[...targets].reverse()];
    const runs = new Map<string, TimedRun[]>(targets.map((t) => [t.name, []]));
    for (const t of order) {
      const done = runs.get(t.name)!;
      await ensurePool(t, seconds / 2, Math.max(warmupRate[t.name], ...done.map((r) => r.requests / r.seconds)));
      const cpuBefore = cpuNow(t);
      const wallStarted = performance.now();
      const run = runTarget(t, work, poolFile, poolSize, seconds / 2, connections, threads);
      const wall = (performance.now() - wallStarted) / 1000;
      const cpuAfter = cpuNow(t);
      run.cpu = { target: cpuAfter.target - cpuBefore.target, database: cpuAfter.database - cpuBefore.database, machineBusy: cpuAfter.machineBusy - cpuBefore.machineBusy, wall };
      done.push(run);
      acknowledged[t.name] += run.successes;
      console.log(`  ${t.name}: ${run.rate.toFixed(0)}/s over ${run.seconds.toFixed(1)} s, ${run.errors} errors${run.errors ? ` ${JSON.stringify(run.statuses)}` : ''}`);
    }
    const peak = Object.fromEntries(targets.filter((t) => t.service).map((t) => [t.name, processTreeMemory(t.service!.pid)]));

    // Durability and consistency: every 201 is in the database, one audit event each, the chain verifies.
    const consistency: Record<string, Record<string, unknown>> = {};
    for (const t of targets) if (t.service) consistency[t.name] = await checkConsistency(t.service, acknowledged[t.name]);

    const summaryOf = (parts: TimedRun[]) => {
      const secs = parts.reduce((s, r) => s + r.seconds, 0);
      const successes = parts.reduce((s, r) => s + r.successes, 0);
      const cpu = (field: 'target' | 'database' | 'machineBusy' | 'wall') => parts.reduce((s, r) => s + (r.cpu?.[field] ?? 0), 0);
      return {
        // CPU per answer (µs) of the target's processes and, on PostgreSQL, of the database server; cores busy on average.
        cpuPerSuccessUs: successes ? (cpu('target') / successes) * 1e6 : null,
        databaseCpuPerSuccessUs: successes && cpu('database') ? (cpu('database') / successes) * 1e6 : null,
        targetCores: cpu('target') / cpu('wall'),
        machineBusyCores: cpu('machineBusy') / cpu('wall'),
        rate: successes / secs,
        seconds: secs,
        successes,
        errors: parts.reduce((s, r) => s + r.errors, 0),
        slowOver2s: parts.reduce((s, r) => s + r.timeouts, 0),
        reused: parts.reduce((s, r) => s + r.reused, 0),
        p50Ms: Math.max(...parts.map((r) => r.p50Ms)),
        p99Ms: Math.max(...parts.map((r) => r.p99Ms)),
        halves: parts.map((r) => Math.round(r.rate)),
        failures: parts.flatMap((r) => r.failures),
      };
    };
    const totals = Object.fromEntries([...runs].map(([name, parts]) => [name, summaryOf(parts)]));
    const ratios = Object.fromEntries(targets.filter((t) => t.service).map((t) => [t.name, totals[t.name].rate / totals.cfssl.rate]));
    const mb = (m: ProcessMemory[] | undefined, field: 'rssMb' | 'hwmMb') => (m ?? []).map((p) => `${p.pid}: ${p[field].toFixed(0)} MB`).join(', ');

    // The floor of our own code: the X.509 work of an issuance alone, on one thread of this (idle by now) process. How
    // far the service is from it, and how it compares with cfssl (docs/benchmarks.md, "Issuance vs CFSSL").
    const pkiOnly = await pkiOnlyPerSecond(Array.from({ length: 2000 }, (_, i) => fastP256Csr(`pki-only-${i}`)));
    const versions = { openssl: toolVersion('openssl', ['version']), cfssl: toolVersion('cfssl', ['version']).replace(/^Version:\s*/, ''), wrk: toolVersion('wrk', ['-v']) };
    console.log(`\nissuance vs cfssl: wrk -t${threads} -c${connections}, ${seconds} s per target in two halves (order ${order.map((t) => t.name).join(', ')}); ${warmupSeconds} s warm-up each, not counted`);
    console.log(`  every request a distinct P-256 CSR; ours: POST /v1/certificates (device profile, admin key), local P-256 issuing CA, WORKERS=${workers || '(service default)'} on PostgreSQL; cfssl ${versions.cfssl}: POST /api/v1/cfssl/sign, openssl-made P-256 issuing CA, no database`);
    for (const t of targets) {
      const s = totals[t.name];
      console.log(
        `  ${t.name.padEnd(13)}: ${s.rate.toFixed(0).padStart(5)}/s (halves ${s.halves.join(', ')}), p50 ${s.p50Ms.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms, ` +
          `${s.errors} errors${s.slowOver2s ? `, ${s.slowOver2s} answered after wrk's 2 s timeout` : ''}${s.reused ? `, ${s.reused} requests reused a CSR` : ''}${s.failures.length ? ` (${s.failures.join('; ')})` : ''}`,
      );
    }
    for (const [name, ratio] of Object.entries(ratios)) console.log(`  ratio ${name}/cfssl = ${ratio.toFixed(2)}`);
    // Where the gap is: CPU per answer, which a shared VM moves much less than rates (docs/benchmarks.md, "Issuance vs CFSSL").
    for (const t of targets) {
      const s = totals[t.name];
      console.log(
        `  CPU per answer ${t.name.padEnd(13)}: ${s.cpuPerSuccessUs?.toFixed(0) ?? '-'} µs (its processes used ${s.targetCores.toFixed(2)} cores)` +
          `${s.databaseCpuPerSuccessUs ? ` + PostgreSQL server ${s.databaseCpuPerSuccessUs.toFixed(0)} µs` : ''}; machine busy ${s.machineBusyCores.toFixed(2)} of ${os.cpus().length} cores`,
      );
    }
    console.log(
      `  pki only (parse + check CSR, encode + sign certificate; no HTTP, no database), one thread: ${pkiOnly.toFixed(0)}/s (${(1e6 / pkiOnly).toFixed(0)} µs each) = ${(pkiOnly / totals.cfssl.rate).toFixed(2)} × cfssl; ` +
        targets.filter((t) => t.service).map((t) => `${t.name}/pki-only = ${(totals[t.name].rate / pkiOnly).toFixed(2)}`).join(', '),
    );
    for (const t of targets.filter((x) => x.service)) {
      console.log(`  ${t.name} memory (pid: MB): idle RSS ${mb(idle[t.name], 'rssMb')}; peak RSS (VmHWM) ${mb(peak[t.name], 'hwmMb')}  (goal: idle <= 150, load <= 400 per process)`);
      console.log(`  ${t.name} after the run: ${JSON.stringify(consistency[t.name])}`);
    }
    if (warmupFailures.length) console.log(`  warm-up failures: ${warmupFailures.join(' | ')}`);

    const file = writeResults('issuance', {
      benchmark: 'issuance --peer cfssl',
      when: new Date().toISOString(),
      machine: { ...machineFacts(), ...versions },
      settings: { seconds, connections, threads, warmupSeconds, workers: workers || null, order: order.map((t) => t.name), csrPool: poolSize },
      warmupRate,
      results: totals,
      halves: Object.fromEntries(runs),
      ratiosOursOverCfssl: ratios,
      pkiOnlyPerSecond: pkiOnly,
      memoryMb: Object.fromEntries(targets.filter((t) => t.service).map((t) => [t.name, { idle: idle[t.name], peak: peak[t.name] }])),
      consistency,
      warmupFailures,
    });
    console.log(`  results: ${path.relative(process.cwd(), file)}`);
    const failed = warmupFailures.length > 0 || Object.values(totals).some((s) => s.errors > 0 || s.failures.length > 0) || Object.values(consistency).some((c) => c.ok !== true);
    if (failed) process.exitCode = 1;
  } finally {
    cfssl?.stop();
    for (const t of targets) await t.service?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
