import { createHash } from 'node:crypto';
import { invocationDeadline, LambdaContextLike, lambdaConfig } from './shared/config';
import { postToFleetPki } from './shared/fleet-pki-client';
import { log } from './shared/logger';

/**
 * The AWS IoT pre-authentication Lambda (custom client certificate validation: a domain configuration's
 * `clientCertificateConfig.clientCertificateCallbackArn`, docs/aws-fleet-provisioning.md). At each CONNECT on that
 * domain AWS IoT hands it the client's certificate chain; it asks Fleet PKI whether the leaf may connect
 * (POST /v1/provisioning/aws-certificate-status) and answers `{isAuthenticated}`.
 *
 * Fails closed: any doubt (no chain, a chain that does not parse, Fleet PKI unreachable or slow past its bounded
 * retries, an unexpected answer) is `isAuthenticated: false`, logged with the words "fail closed".
 *
 * Cache: an answer is kept STATUS_CACHE_SECONDS (default 30, 0 = none) per certificate in the warm Lambda, so a
 * revocation in Fleet PKI refuses the next CONNECT within that time plus one status call (measured bound in the doc).
 * Failures are never cached.
 */

/** The event AWS IoT sends (developer guide, "Custom client certificate validation"). */
export interface ClientCertificateCheckEvent {
  connectionMetadata?: { id?: string };
  /** The AWS IoT certificate id of the leaf. */
  principalId?: string;
  /** The SNI the client sent. */
  serverName?: string;
  /** The client's chain, leaf first: base64 DER or PEM strings. */
  clientCertificateChain?: string[];
}

export interface ClientCertificateCheckResult {
  isAuthenticated: boolean;
}

const HANDLER = 'client-certificate-check';
const cache = new Map<string, { authenticated: boolean; until: number }>();
/** At most this many answers kept (STATUS_CACHE_ENTRIES, default 10,000); past it the oldest entry goes. */
function cacheLimit(): number {
  const value = Number(process.env.STATUS_CACHE_ENTRIES || 10_000);
  return Number.isInteger(value) && value >= 1 ? Math.min(value, 1_000_000) : 10_000;
}

/** Keeps an answer, evicting the oldest ones beyond the limit (never the whole cache at once). */
function remember(certificateId: string, entry: { authenticated: boolean; until: number }): void {
  cache.delete(certificateId); // re-inserted at the end: the newest (a Map iterates in insertion order)
  const limit = cacheLimit();
  while (cache.size >= limit) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
  cache.set(certificateId, entry);
}

/** For tests: how many answers are kept, and whether one is. */
export function statusCacheView(): { size: number; has(certificateId: string): boolean } {
  return { size: cache.size, has: (id) => cache.has(id) };
}

/** The DER of one chain entry, PEM or base64 DER; undefined when it is neither. */
function derOf(entry: unknown): Buffer | undefined {
  if (typeof entry !== 'string' || entry.length === 0) return undefined;
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(entry);
  const base64 = (pem ? pem[1] : entry).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return undefined;
  const der = Buffer.from(base64, 'base64');
  // A certificate is a DER SEQUENCE.
  return der.length > 32 && der[0] === 0x30 ? der : undefined;
}

function cacheSeconds(): number {
  const raw = process.env.STATUS_CACHE_SECONDS;
  const value = raw === undefined || raw === '' ? 30 : Number(raw);
  return Number.isFinite(value) && value >= 0 ? Math.min(value, 3600) : 30;
}

export async function handler(event: ClientCertificateCheckEvent, context?: LambdaContextLike): Promise<ClientCertificateCheckResult> {
  const started = Date.now();
  const connectionId = event?.connectionMetadata?.id ?? null;
  const leaf = derOf(event?.clientCertificateChain?.[0]);
  if (!leaf) {
    log('warn', HANDLER, 'fail closed: no parsable client certificate in the event', { connectionId });
    return { isAuthenticated: false };
  }
  const certificateId = createHash('sha256').update(leaf).digest('hex');
  const fields = { connectionId, certificateId, serverName: event.serverName ?? null };
  if (event.principalId && event.principalId.toLowerCase() !== certificateId) {
    log('warn', HANDLER, 'fail closed: principalId is not the id of the presented leaf certificate', { ...fields, principalId: event.principalId });
    return { isAuthenticated: false };
  }
  const now = Date.now();
  const hit = cache.get(certificateId);
  if (hit && hit.until > now) {
    log('debug', HANDLER, 'cached answer', { ...fields, isAuthenticated: hit.authenticated });
    return { isAuthenticated: hit.authenticated };
  }
  let config;
  try {
    config = lambdaConfig();
    const res = await postToFleetPki(config, '/v1/provisioning/aws-certificate-status', { certificateId }, invocationDeadline(config, context));
    if (res.status !== 200 || typeof res.body.authenticated !== 'boolean') {
      log('error', HANDLER, `fail closed: Fleet PKI answered ${res.status}`, { ...fields, code: res.body.code ?? null, ms: Date.now() - started });
      return { isAuthenticated: false };
    }
    const authenticated = res.body.authenticated;
    const seconds = cacheSeconds();
    if (seconds > 0) {
      remember(certificateId, { authenticated, until: now + seconds * 1000 });
    }
    log(authenticated ? 'info' : 'warn', HANDLER, authenticated ? 'connection allowed' : 'connection refused', {
      ...fields,
      status: res.body.status ?? null,
      known: res.body.known ?? null,
      ms: Date.now() - started,
    });
    return { isAuthenticated: authenticated };
  } catch (err) {
    log('error', HANDLER, `fail closed: ${(err as Error).message}`, { ...fields, ms: Date.now() - started });
    return { isAuthenticated: false };
  }
}

/** For tests and the data-plane stand-in's reset: forget every cached answer. */
export function clearStatusCache(): void {
  cache.clear();
}
