import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { apiKey, ApiKeyUnreadable, forgetApiKey } from './api-key';
import { LambdaConfig } from './config';

/** Fleet PKI's answer: the HTTP status and the parsed JSON body (problem+json on a refusal). */
export interface FleetPkiResponse {
  status: number;
  body: Record<string, unknown>;
}

/** Fleet PKI could not be reached or did not answer in time, after every attempt (the caller fails closed). */
export class FleetPkiUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FleetPkiUnavailable';
  }
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const httpsAgents = new Map<string, https.Agent>();

function agentFor(url: URL, caBundle: string | undefined): http.Agent {
  if (url.protocol === 'http:') return httpAgent;
  const key = caBundle ?? '';
  let agent = httpsAgents.get(key);
  if (!agent) {
    const ca = caBundle === undefined ? undefined : caBundle.includes('-----BEGIN') ? caBundle : fs.readFileSync(caBundle, 'utf8');
    agent = new https.Agent({ keepAlive: true, maxSockets: 64, ...(ca ? { ca } : {}) });
    httpsAgents.set(key, agent);
  }
  return agent;
}

/** The largest answer read (Fleet PKI's are a few KiB: a certificate and its chain); a bigger one ends the attempt. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** One attempt, bounded by `timeoutMs` from start to the end of the body. */
function once(config: LambdaConfig, path: string, body: unknown, key: string, timeoutMs: number): Promise<FleetPkiResponse> {
  const url = new URL(`${config.baseUrl}${path}`);
  const payload = Buffer.from(JSON.stringify(body));
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method: 'POST',
        agent: agentFor(url, config.caBundle),
        headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length, Accept: 'application/json', Authorization: `Bearer ${key}` },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error(`Fleet PKI's answer is over ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown> = {};
          try {
            parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            parsed = { detail: 'Fleet PKI answered something that is not JSON' };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise bounded by `ms`: rejects with `what` when it has not settled by then. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(what)), Math.max(0, ms));
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Below this much time left no attempt is started: it could not finish. */
const MIN_ATTEMPT_MS = 50;

/**
 * POSTs JSON to Fleet PKI with the API key: at most 1 + `retries` attempts, each bounded by `timeoutMs`, retried only
 * on a network error, a timeout, 429 or 5xx (both calls are safe to repeat: the provider call is idempotent on claim +
 * CSR, the status call reads), with a short jittered backoff. A 401 drops the cached key and tries once more with a
 * fresh read (a rotated key). Everything — key read, attempts, backoff — ends by `deadline` (ms since the epoch; from
 * the Lambda's remaining time, see `invocationDeadline`), so the caller always gets to answer and log before the
 * Lambda is stopped. Throws FleetPkiUnavailable when no attempt got an answer it can use; its message never holds
 * error text from the key's store (it may quote the key).
 */
export async function postToFleetPki(config: LambdaConfig, path: string, body: unknown, deadline = Date.now() + config.deadlineMs): Promise<FleetPkiResponse> {
  let lastProblem = 'no attempt made';
  let refreshedKey = false;
  let attempts = 0;
  const left = () => deadline - Date.now();
  for (let attempt = 0; attempt <= config.retries; attempt++) {
    if (attempt > 0) {
      const pause = 50 * 2 ** (attempt - 1) + Math.floor(Math.random() * 50);
      if (left() - pause < MIN_ATTEMPT_MS) break;
      await sleep(pause);
    }
    if (left() < MIN_ATTEMPT_MS) break;
    let key: string;
    try {
      key = await within(apiKey(config), left(), 'reading the API key took past the deadline');
    } catch (err) {
      attempts++;
      lastProblem = `reading the API key failed: ${err instanceof ApiKeyUnreadable ? err.message : (err as Error).name || 'Error'}`;
      continue;
    }
    if (left() < MIN_ATTEMPT_MS) break;
    attempts++;
    try {
      const res = await once(config, path, body, key, Math.min(config.timeoutMs, left()));
      if (res.status === 401 && !refreshedKey) {
        refreshedKey = true;
        forgetApiKey();
        lastProblem = 'Fleet PKI refused the API key (401)';
        attempt--;
        continue;
      }
      if (res.status === 429 || res.status >= 500) {
        lastProblem = `Fleet PKI answered ${res.status}`;
        continue;
      }
      return res;
    } catch (err) {
      lastProblem = (err as Error).message;
    }
  }
  const deadlineNote = left() < MIN_ATTEMPT_MS ? ' (invocation deadline reached)' : '';
  throw new FleetPkiUnavailable(`Fleet PKI unavailable after ${attempts} attempt(s)${deadlineNote}: ${lastProblem}`);
}
