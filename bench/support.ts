import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateApiKey } from '../src/auth/api-key-secret';
import { SERVICE_NODE_FLAGS } from '../src/service-node-flags';
import { temporaryDatabase } from '../scripts/lib/temporary-database';
import { freePort } from '../test/support/free-port';

export { freePort };

export function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : fallback;
}

export function bearer(key: string): { Authorization: string } {
  return { Authorization: `Bearer ${key}` };
}

/** Reference: raw P-256 ECDSA signatures per second over a TBS-sized message, single-threaded. */
export function referenceSignaturesPerSecond(): number {
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

export interface KmsStats {
  throttled: number;
  calls: Record<string, number>;
  /** Tokens left in the stand-in's bucket: what could still be signed at once, beyond the sustained rate. */
  tokens: number | null;
}

/** Starts the KMS stand-in in its own process (so its CPU is not the service's), with the given knobs. */
export async function startKmsStandIn(latencyMs: number, tps: number): Promise<{ endpoint: string; stats: () => Promise<KmsStats>; stop: () => void }> {
  const port = await freePort();
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

/**
 * Starts the real service (`node dist/src/main.js`) in its own process on a fresh data directory; `env` may point it
 * at a database of the caller's (DATABASE_URL). `stop` does not wait: see startServiceProcess for one that does.
 */
export async function startService(env: Record<string, string>): Promise<{ baseUrl: string; adminKey: string; pid: number; stop: () => void }> {
  const service = await startServiceProcess('sqlite', env);
  return { baseUrl: service.baseUrl, adminKey: service.adminKey, pid: service.pid, stop: () => void service.stop() };
}

/** `total` calls of `call(i)` by `concurrency` closed-loop clients; the latency of each call and the wall time. */
export async function closedLoop(total: number, concurrency: number, call: (i: number) => Promise<void>): Promise<{ seconds: number; latenciesMs: number[] }> {
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

export function percentile(sortedMs: number[], p: number): number {
  return sortedMs.length ? sortedMs[Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)] : NaN;
}

export function summary(what: string, count: number, run: { seconds: number; latenciesMs: number[] }, failures: string[]): number {
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  const rate = count / run.seconds;
  console.log(
    `${what}: ${count} in ${run.seconds.toFixed(2)} s = ${rate.toFixed(0)}/s, latency p50 ${percentile(sorted, 50).toFixed(1)} ms, ` +
      `p95 ${percentile(sorted, 95).toFixed(1)} ms, ${failures.length} failed`,
  );
  for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure.slice(0, 200)}`);
  return rate;
}

/** One wrk run: requests per second, latency percentiles and what went wrong. */
export interface WrkRun {
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
export function wrkPostScript(bodiesFile: string, urlPath: string): string {
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

export function wrkDurationMs(value: string, unit: string): number {
  return Number(value) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[unit];
}

/** Runs wrk (its own process: the client takes as little CPU from the servers as a client can) and reads its report. */
export function runWrk(url: string, seconds: number, connections: number, threads: number, script?: string): WrkRun {
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

/** Sum of a Prometheus counter's samples whose labels match `labels`. */
export async function counterSum(baseUrl: string, name: string, labels: RegExp): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && labels.test(line))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** The service as a process of its own on a fresh database of the driver, with its pid (for memory readings). */
export interface ServiceProcess {
  baseUrl: string;
  adminKey: string;
  pid: number;
  driver: 'sqlite' | 'postgres';
  /** SIGTERM, waits for the process to end (up to 30 s, then SIGKILL), removes the data directory and drops the database. */
  stop(): Promise<void>;
}

/**
 * Starts `node dist/src/main.js` on a fresh SQLite file or, for postgres, a fresh database on the server named by
 * FLEET_PKI_TEST_PG_URL (dropped by stop(); PostgreSQL needs FLEET_PKI_MASTER_KEY, a random one here).
 */
export async function startServiceProcess(driver: 'sqlite' | 'postgres', env: Record<string, string> = {}): Promise<ServiceProcess> {
  const db = driver === 'postgres' ? await temporaryDatabase('postgres') : undefined;
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-bench-'));
  const adminKey = generateApiKey().key;
  // As the service runs in production (npm start, the container): with its Node flags.
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, path.join(__dirname, '../src/main.js')], {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      FLEET_PKI_BOOTSTRAP_ADMIN_KEY: adminKey,
      ...(db && db.config.driver === 'postgres' ? { DATABASE_URL: db.config.url, FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex') } : {}),
      ...(process.env.BENCH_SERVICE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVICE_NODE_OPTIONS } : {}),
      // An A/B of the crypto threads on one build: CRYPTO_THREADS=0 npm run bench -- … (docs/benchmarks.md).
      ...(process.env.CRYPTO_THREADS ? { CRYPTO_THREADS: process.env.CRYPTO_THREADS } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanUp = async () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    await db?.drop();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`service (${driver}) exited with ${code} before it listened`)));
    });
  } catch (err) {
    await cleanUp();
    throw err;
  }
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    adminKey,
    pid: child.pid!,
    driver,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
      await cleanUp();
    },
  };
}

/** Resident memory of one process, from /proc/<pid>/status: current (VmRSS) and peak since it started (VmHWM), MB. */
export interface ProcessMemory {
  pid: number;
  rssMb: number;
  hwmMb: number;
}

/** `pid` and its child processes (a cluster primary's workers; a PostgreSQL postmaster's backends), by pgrep. */
function processTree(pid: number): number[] {
  const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean).map(Number) ?? [];
  return [pid, ...children];
}

/** The memory of `pid` and of its child processes (a cluster primary's workers), Linux only; [] elsewhere. */
export function processTreeMemory(pid: number): ProcessMemory[] {
  return processTree(pid).map(processMemory).filter((m): m is ProcessMemory => m !== undefined);
}

/** The memory of one process (undefined when it is gone or /proc is missing). */
export function processMemory(pid: number): ProcessMemory | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { pid, rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, seconds) used so far by `pid` and its child processes (a cluster's workers), from
 * /proc/<pid>/stat (Linux; 0 for a process that is gone). Read before and after a run, it gives the CPU a target
 * spent per answer: a figure a noisy shared VM moves far less than throughput.
 */
export function processTreeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const each of processTree(pid)) {
    try {
      // The command name (2nd field) is in parentheses and may hold spaces: the fields counted from after it.
      const stat = fs.readFileSync(`/proc/${each}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of proc(5))
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ, the unit of /proc's CPU times: 100 on Linux for every architecture the service runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The machine's busy CPU time so far (seconds, all cores: user, nice, system, irq, softirq; not idle, I/O wait or steal), from /proc/stat; 0 off Linux. */
export function machineBusyCpuSeconds(): number {
  try {
    const [user, nice, system, , , irq, softirq] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Writes a benchmark's results to bench/results/<name>-<timestamp>.json (the source tree's, not dist's); returns the path. */
export function writeResults(name: string, results: unknown): string {
  const dir = path.join(__dirname, '../../bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

/** What this machine is, for the results: CPUs, memory, Node.js. */
export function machineFacts(): Record<string, unknown> {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryMb: Math.round(os.totalmem() / 1048576), node: process.version, platform: `${os.platform()} ${os.release()}` };
}
