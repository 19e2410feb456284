/**
 * Response headers every answer of the service carries, whichever layer writes it (Fastify, the OCSP binding ahead of
 * it, or the HTTP server's own refusals of malformed requests):
 * - `X-Content-Type-Options: nosniff`, so a browser never runs a body as something other than its declared type;
 * - `Strict-Transport-Security` when the service terminates TLS itself (TLS_CERT_FILE): browsers then refuse a
 *   downgrade to plain HTTP for a year. Behind a TLS-terminating proxy, that proxy sets it.
 */
export function securityHeaders(tls: boolean): [string, string][] {
  const headers: [string, string][] = [['X-Content-Type-Options', 'nosniff']];
  if (tls) headers.push(['Strict-Transport-Security', 'max-age=31536000']);
  return headers;
}

/**
 * The caching default for everything Fastify answers: API answers carry secrets (a new API key, a generated claim key)
 * and per-caller data, so no cache may keep them. Routes meant to be cached (CRLs, CA certificates; OCSP sets its own)
 * say so with their own Cache-Control, which replaces this one.
 */
export const DEFAULT_CACHE_CONTROL: [string, string] = ['Cache-Control', 'no-store'];
