import * as http from 'node:http';
import * as https from 'node:https';

/**
 * `ocsp-staple`: the OCSP Lambda of an AWS IoT Core domain configuration (`serverCertificateConfig.ocspLambdaArn`,
 * docs/aws-deploy.md). AWS IoT hands it a base64 DER OCSP request for the domain's server certificate; it asks Fleet
 * PKI's public OCSP responder (`POST ${FLEET_PKI_URL}/ocsp`, RFC 6960 Appendix A) and returns the base64 DER answer,
 * which AWS IoT staples to its TLS handshakes. AWS takes at most 4 KiB: a larger answer is an error here, not a
 * truncation.
 *
 * Self-contained on purpose (node builtins only): the responder is public, so this function holds no API key and
 * reads no secret. Bounded: one attempt per FLEET_PKI_TIMEOUT_MS, at most OCSP_STAPLE_ATTEMPTS attempts, retrying only
 * what may pass next time (network errors, timeouts, HTTP 429/5xx, OCSP tryLater). A non-successful OCSP status is
 * an error, never stapled: AWS IoT then keeps the answer it had (docs/aws-deploy.md, "ocsp-staple").
 */

/** The largest OCSP response AWS IoT accepts from the Lambda (ServerCertificateConfig.ocspLambdaArn). */
export const OCSP_STAPLE_MAX_RESPONSE_BYTES = 4096;
/** The largest OCSP request accepted: a stapling request names one certificate and is ~100 bytes. */
export const OCSP_STAPLE_MAX_REQUEST_BYTES = 8192;
const DEFAULT_TIMEOUT_MS = 3000;
const MAX_TIMEOUT_MS = 30_000;
const DEFAULT_ATTEMPTS = 3;
const BACKOFF_MS = [200, 600];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const OCSP_STATUS = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(4 unused)', 'sigRequired', 'unauthorized'];

/** What AWS IoT sends: the base64 request itself, or an object carrying it in `ocspRequest`. */
export type OcspStapleEvent = string | { ocspRequest?: unknown; messageId?: unknown; [key: string]: unknown };
/** What the handler returns: the same shape it was given (a string for a string, else `{ocspResponse}`). */
export type OcspStapleResult = string | { ocspResponse: string; messageId?: string };

/** A failure the handler reports: `retryable` says whether another attempt may succeed. */
export class OcspStapleError extends Error {
  constructor(
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'OcspStapleError';
  }
}

interface Settings {
  responderUrl: URL;
  timeoutMs: number;
  attempts: number;
  ca?: string;
}

/** The configuration from the environment, checked on each call (cheap; a changed variable takes effect at once). */
function settings(env: NodeJS.ProcessEnv = process.env): Settings {
  const base = env.FLEET_PKI_URL;
  if (!base) throw new OcspStapleError('FLEET_PKI_URL is not set');
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new OcspStapleError('FLEET_PKI_URL is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OcspStapleError('FLEET_PKI_URL must be an http(s) URL');
  if (url.username || url.password) throw new OcspStapleError('FLEET_PKI_URL must not carry credentials');
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/ocsp`;
  url.search = '';
  url.hash = '';
  return {
    responderUrl: url,
    timeoutMs: boundedInteger(env.FLEET_PKI_TIMEOUT_MS, 'FLEET_PKI_TIMEOUT_MS', DEFAULT_TIMEOUT_MS, 100, MAX_TIMEOUT_MS),
    attempts: boundedInteger(env.OCSP_STAPLE_ATTEMPTS, 'OCSP_STAPLE_ATTEMPTS', DEFAULT_ATTEMPTS, 1, 5),
    ca: env.FLEET_PKI_CA_BUNDLE?.includes('-----BEGIN CERTIFICATE-----') ? env.FLEET_PKI_CA_BUNDLE : undefined,
  };
}

function boundedInteger(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new OcspStapleError(`${name} must be an integer from ${min} to ${max}`);
  return value;
}

/** One log line as JSON (CloudWatch Logs reads it as structured). Never a request, response or secret. */
function log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, fn: 'ocsp-staple', msg, ...fields });
  if (level === 'info') console.log(line);
  else console.error(line);
}

/**
 * Reads a DER TLV header at `offset`: the tag, where the value starts and how long it is. Throws on a header that
 * runs past the buffer or uses the indefinite/over-long forms DER forbids.
 */
function derHeader(der: Buffer, offset: number): { tag: number; start: number; length: number } {
  if (offset + 2 > der.length) throw new OcspStapleError('truncated DER');
  const tag = der[offset];
  const first = der[offset + 1];
  if (first < 0x80) return { tag, start: offset + 2, length: first };
  const count = first & 0x7f;
  if (count === 0 || count > 3 || offset + 2 + count > der.length) throw new OcspStapleError('bad DER length');
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i];
  if (length < 0x80) throw new OcspStapleError('non-minimal DER length');
  return { tag, start: offset + 2 + count, length };
}

/** A single DER SEQUENCE filling the whole buffer: the shape of both an OCSPRequest and an OCSPResponse. */
function assertWholeSequence(der: Buffer, what: string): { start: number; length: number } {
  let header;
  try {
    header = derHeader(der, 0);
  } catch (err) {
    throw new OcspStapleError(`${what} is not DER: ${(err as Error).message}`);
  }
  if (header.tag !== 0x30 || header.start + header.length !== der.length) throw new OcspStapleError(`${what} is not a single DER SEQUENCE`);
  return header;
}

/** The base64 DER OCSP request out of the event, decoded and checked for shape and size. */
export function decodeRequest(event: OcspStapleEvent): Buffer {
  const text = typeof event === 'string' ? event : event && typeof event === 'object' ? event.ocspRequest : undefined;
  if (typeof text !== 'string' || text.length === 0) throw new OcspStapleError('the event carries no base64 OCSP request (a string, or an object with "ocspRequest")');
  const compact = text.replace(/\s+/g, '');
  if (compact.length > Math.ceil(OCSP_STAPLE_MAX_REQUEST_BYTES / 3) * 4) throw new OcspStapleError(`OCSP request larger than ${OCSP_STAPLE_MAX_REQUEST_BYTES} bytes`);
  if (!BASE64.test(compact) || compact.length % 4 !== 0) throw new OcspStapleError('OCSP request is not base64');
  const der = Buffer.from(compact, 'base64');
  assertWholeSequence(der, 'OCSP request');
  return der;
}

/** The OCSPResponseStatus (RFC 6960 §4.2.1) of a DER OCSPResponse, after checking its outer shape. */
export function responseStatus(der: Buffer): number {
  const outer = assertWholeSequence(der, 'OCSP response');
  const status = derHeader(der, outer.start);
  if (status.tag !== 0x0a || status.length !== 1 || status.start + 1 > der.length) throw new OcspStapleError('OCSP response has no responseStatus');
  return der[status.start];
}

/** POSTs the request to the responder once; resolves with the body (at most the 4 KiB limit + 1 byte read). */
function postOnce(s: Settings, request: Buffer): Promise<Buffer> {
  const client = s.responderUrl.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // The whole exchange (connect, TLS, answer) within timeoutMs, not only each idle gap.
    const timer = setTimeout(() => req.destroy(new OcspStapleError(`no answer within ${s.timeoutMs} ms`, true)), s.timeoutMs);
    const settle = <T>(fn: (value: T) => void) => (value: T) => {
      clearTimeout(timer);
      fn(value);
    };
    resolve = settle(resolve);
    reject = settle(reject);
    const req = client.request(
      s.responderUrl,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/ocsp-request', Accept: 'application/ocsp-response', 'Content-Length': request.length },
        ...(s.ca && s.responderUrl.protocol === 'https:' ? { ca: s.ca } : {}),
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          res.resume();
          reject(new OcspStapleError(`responder answered HTTP ${status}`, status === 429 || status >= 500));
          return;
        }
        const type = String(res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (type !== 'application/ocsp-response') {
          res.resume();
          reject(new OcspStapleError(`responder answered Content-Type "${type.slice(0, 64)}", not application/ocsp-response`));
          return;
        }
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          length += chunk.length;
          if (length > OCSP_STAPLE_MAX_RESPONSE_BYTES) {
            req.destroy();
            reject(new OcspStapleError(`OCSP response larger than ${OCSP_STAPLE_MAX_RESPONSE_BYTES} bytes (AWS IoT's limit); not stapled`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', (err) => reject(new OcspStapleError(`reading the response failed: ${err.message}`, true)));
      },
    );
    req.on('error', (err) => reject(err instanceof OcspStapleError ? err : new OcspStapleError(`request failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, true)));
    req.end(request);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the responder, with the bounded retries; returns a successful OCSP response of at most 4 KiB. */
export async function fetchOcspResponse(request: Buffer, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  const s = settings(env);
  const responder = s.responderUrl.origin + s.responderUrl.pathname;
  let last: OcspStapleError | undefined;
  for (let attempt = 1; attempt <= s.attempts; attempt++) {
    try {
      const body = await postOnce(s, request);
      if (body.length > OCSP_STAPLE_MAX_RESPONSE_BYTES) throw new OcspStapleError(`OCSP response larger than ${OCSP_STAPLE_MAX_RESPONSE_BYTES} bytes`);
      const status = responseStatus(body);
      if (status !== 0) throw new OcspStapleError(`responder answered OCSP status ${OCSP_STATUS[status] ?? status}`, status === 3);
      log('info', 'stapled', { responder, bytes: body.length, attempt });
      return body;
    } catch (err) {
      last = err instanceof OcspStapleError ? err : new OcspStapleError(String((err as Error)?.message ?? err));
      log('warn', 'attempt failed', { responder, attempt, of: s.attempts, error: last.message, retryable: last.retryable });
      if (!last.retryable || attempt === s.attempts) break;
      await sleep(BACKOFF_MS[Math.min(attempt - 1, BACKOFF_MS.length - 1)]);
    }
  }
  throw last ?? new OcspStapleError('no attempt made');
}

/**
 * The Lambda entry point. Throws (the invocation fails, AWS IoT keeps its previous staple) on a malformed or
 * oversized request, an unreachable responder, a non-successful OCSP status or an answer over 4 KiB.
 */
export async function handler(event: OcspStapleEvent): Promise<OcspStapleResult> {
  let request: Buffer;
  try {
    request = decodeRequest(event);
  } catch (err) {
    log('error', 'refused the request', { error: (err as Error).message });
    throw err;
  }
  try {
    const response = await fetchOcspResponse(request);
    const ocspResponse = response.toString('base64');
    if (typeof event === 'string') return ocspResponse;
    return typeof event.messageId === 'string' ? { messageId: event.messageId, ocspResponse } : { ocspResponse };
  } catch (err) {
    log('error', 'no OCSP response to staple', { error: (err as Error).message });
    throw err;
  }
}
