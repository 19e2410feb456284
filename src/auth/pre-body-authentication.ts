import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';

/** Authenticates a request from its headers and TLS socket alone, keeping the principal on the request; throws a 401. */
export type PreBodyAuthenticator = (request: FastifyRequest) => Promise<void>;

/**
 * Routes authenticated by a certificate (the station exchange, the device renewal) take their credentials from the
 * headers and the TLS socket, never from the body. Their authentication runs as a `preParsing` hook of exactly those
 * routes, before Fastify reads the body: an anonymous caller gets its 401 (a problem, with WWW-Authenticate) and
 * learns nothing from how its body is refused (not JSON, too deep or wide, too large), and costs no more than its
 * headers. The unread body is then drained or the connection closed (common/streamed-bodies.ts, settleUnreadBody).
 *
 * `routes` maps "METHOD /path", as the route is registered, to its authenticator. Must be installed before the routes
 * are registered (before Nest's app.init()); the server refuses to start when a listed route never appeared, so a
 * renamed route cannot silently go back to reading bodies first.
 */
export function authenticateBeforeBody(fastify: FastifyInstance, routes: ReadonlyMap<string, PreBodyAuthenticator>): void {
  const missing = new Set(routes.keys());
  fastify.addHook('onRoute', (route: RouteOptions) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      const key = `${method} ${route.url}`;
      const authenticate = routes.get(key);
      if (!authenticate) continue;
      missing.delete(key);
      const hook = async (request: FastifyRequest, _reply: unknown, payload: NodeJS.ReadableStream) => {
        await authenticate(request);
        return payload;
      };
      const existing = route.preParsing === undefined ? [] : Array.isArray(route.preParsing) ? route.preParsing : [route.preParsing];
      route.preParsing = [hook, ...existing];
    }
  });
  fastify.addHook('onReady', async () => {
    if (missing.size > 0) throw new Error(`routes to authenticate before their body is read were never registered: ${[...missing].join(', ')}`);
  });
}
