import cluster, { Worker } from 'node:cluster';
import { AppConfig } from './config/config';
import { configureLogging } from './logging/service-logger';

/**
 * WORKERS > 1: one primary process that serves nothing and supervises, and WORKERS worker processes that each run
 * the whole application on the shared port (node:cluster hands them connections in turn). Workers are replicas of
 * one another on one PostgreSQL database; docs/architecture.md ("Workers") says what is decided in the database and
 * what each process keeps for itself.
 */

/** What a worker tells the primary once its server listens. */
export interface Started {
  port: number;
  /** The initial admin API key when this process created it (at most once per database). */
  firstKey?: string;
}

interface ListeningMessage {
  fleetPki: 'listening';
  port: number;
  firstKey?: string;
}

/** A worker that lived at least this long restarts without delay; quicker deaths back off, doubling to MAX. */
const HEALTHY_AFTER_MS = 30_000;
const RESTART_BACKOFF_BASE_MS = 500;
const RESTART_BACKOFF_MAX_MS = 30_000;
/** On SIGTERM/SIGINT, how long workers get to finish (Nest's shutdown hooks) before they are killed. */
const STOP_GRACE_MS = 30_000;

/**
 * The primary: starts the first worker alone (it runs the migrations and creates the initial admin key), the others
 * once it listens; `announce` is called once, when all of them listen. A worker that dies unexpectedly is replaced,
 * after a delay that doubles with each quick death. SIGTERM/SIGINT stop every worker gracefully, then the primary.
 * If the first worker dies before it ever listened, the service cannot start: the primary exits with its code.
 */
export function superviseWorkers(config: AppConfig, announce: (started: Started) => void): void {
  // The primary's own events, in the log's format with `context: "Primary"` (docs/operations.md, "Logs").
  const logger = configureLogging({ level: config.logLevel, format: config.logFormat }).child({ context: 'Primary' });
  const log = (line: string, level: 'info' | 'warn' | 'error' = 'info') => logger[level](line);
  /** Slot number (1…WORKERS) of each live worker, when it started, and how many quick deaths each slot had in a row. */
  const slots = new Map<Worker, { slot: number; startedAt: number }>();
  const quickDeaths = new Map<number, number>();
  const listening = new Set<number>();
  let announced = false;
  /** Whether any worker ever listened: until then a death of the first worker means the service cannot start. */
  let served = false;
  let firstKey: string | undefined;
  let stopping = false;

  const fork = (slot: number) => {
    const worker = cluster.fork({ FLEET_PKI_WORKER: String(slot) });
    slots.set(worker, { slot, startedAt: Date.now() });
    worker.on('message', (message: ListeningMessage) => {
      if (message?.fleetPki !== 'listening') return;
      firstKey ??= message.firstKey;
      if (!served) for (let other = 2; other <= config.workers; other++) fork(other);
      served = true;
      listening.add(slot);
      if (!announced && listening.size === config.workers) {
        announced = true;
        announce({ port: message.port, firstKey });
      } else if (announced) {
        log(`worker ${slot} (pid ${worker.process.pid}) is serving again`, 'warn'); // the end of an incident logged at warn
      }
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const started = slots.get(worker);
    slots.delete(worker);
    if (!started) return;
    if (stopping) {
      if (slots.size === 0) process.exit(0);
      return;
    }
    const { slot } = started;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!served) {
      log(`the first worker exited (${how}) before it could listen: Fleet PKI failed to start`, 'error');
      process.exit(code || 1);
    }
    listening.delete(slot);
    const deaths = Date.now() - started.startedAt < HEALTHY_AFTER_MS ? (quickDeaths.get(slot) ?? 0) + 1 : 0;
    quickDeaths.set(slot, deaths);
    const delay = deaths === 0 ? 0 : Math.min(RESTART_BACKOFF_MAX_MS, RESTART_BACKOFF_BASE_MS * 2 ** (deaths - 1));
    log(`worker ${slot} (pid ${worker.process.pid}) exited unexpectedly (${how}); restarting it in ${(delay / 1000).toFixed(1)} s`, 'warn');
    setTimeout(() => stopping || fork(slot), delay);
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping ${slots.size} worker(s)`);
    if (slots.size === 0) process.exit(0);
    for (const worker of slots.keys()) worker.process.kill('SIGTERM');
    setTimeout(() => {
      for (const worker of slots.keys()) worker.process.kill('SIGKILL');
      log(`worker(s) still running after ${STOP_GRACE_MS / 1000} s were killed`, 'warn');
      process.exit(1);
    }, STOP_GRACE_MS).unref();
  };
  process.on('SIGTERM', stop).on('SIGINT', stop);
  fork(1);
}

/** This worker's slot (1 to WORKERS, kept by its replacements); 0 when the service is one process. */
export function workerSlot(): number {
  return cluster.isWorker ? Number(process.env.FLEET_PKI_WORKER) || 0 : 0;
}

/**
 * A worker: starts the application, tells the primary where it listens (and the initial admin key when it made it).
 * When the primary goes away (it died), the worker shuts down gracefully as on SIGTERM.
 */
export async function serveAsWorker(start: () => Promise<Started>): Promise<void> {
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  const started = await start();
  const message: ListeningMessage = { fleetPki: 'listening', port: started.port, firstKey: started.firstKey };
  process.send?.(message);
}
