import { Worker } from 'node:worker_threads';

/**
 * Probes a URL at a fixed interval from a worker thread, so the probe keeps its own time even while the
 * service (which runs in the test's main thread) is busy. Every probe is sent on schedule whether or not the
 * earlier ones were answered, and its latency runs from the moment it was due: a stalled event loop shows up
 * as long latencies instead of as probes that were never sent.
 */
export class LatencyProbe {
  private readonly worker: Worker;
  private readonly started: Promise<void>;

  constructor(url: string, everyMs = 10) {
    this.worker = new Worker(PROBE_SOURCE, { eval: true, workerData: { url, everyMs } });
    this.started = new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
    });
  }

  /** Resolves once the worker is probing. */
  ready(): Promise<void> {
    return this.started;
  }

  /** Stops probing, waits for the probes in flight, and answers their latencies in milliseconds (failures count as Infinity). */
  async stop(): Promise<LatencySummary> {
    const result = new Promise<number[]>((resolve, reject) => {
      this.worker.on('message', (message: { latencies?: number[] }) => {
        if (message.latencies) resolve(message.latencies);
      });
      this.worker.once('error', reject);
    });
    this.worker.postMessage('stop');
    const latencies = await result;
    await this.worker.terminate();
    return summarize(latencies);
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  failures: number;
}

export function summarize(latencies: number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : NaN);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1), failures: sorted.filter((l) => l === Infinity).length };
}

/** Plain JavaScript: it runs as is in the worker. */
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, everyMs } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const latencies = [];
let inFlight = 0;
let stopping = false;
let next = performance.now();

function probe(due) {
  inFlight++;
  const done = (ok) => {
    latencies.push(ok ? performance.now() - due : Infinity);
    inFlight--;
    finish();
  };
  const req = http.get(url, { agent, timeout: 30000 }, (res) => {
    res.resume();
    res.on('end', () => done(res.statusCode === 200));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => done(false));
}

function tick() {
  if (stopping) return;
  const now = performance.now();
  // One probe per interval that has passed, each timed from when it was due.
  while (next <= now) {
    probe(next);
    next += everyMs;
  }
  setTimeout(tick, Math.max(0, next - performance.now()));
}

function finish() {
  if (stopping && inFlight === 0) {
    agent.destroy();
    parentPort.postMessage({ latencies });
  }
}

parentPort.on('message', () => {
  stopping = true;
  finish();
});
tick();
parentPort.postMessage({ started: true });
`;
