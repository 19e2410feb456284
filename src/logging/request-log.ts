import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger as PinoInstance } from 'pino';
import type { PinoLogger } from 'nestjs-pino';
import type { Actor, RequestContext } from '../common/actor';
import { REQUEST_CONTEXT } from '../common/access.decorators';
import { REQUEST_CALLER } from '../common/idempotency';

/** The caller of a request, once authenticated: an API key's id, a claim or device certificate's fingerprint. */
function actorOf(request: FastifyRequest): Actor | undefined {
  const fields = request as unknown as Record<string, unknown>;
  return (fields[REQUEST_CONTEXT] as RequestContext | undefined)?.actor ?? (fields[REQUEST_CALLER] as Actor | undefined);
}

/** Probes and scrapes answered with success every few seconds: their lines are debug, not info. */
const PROBE_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One line per request, when its answer is sent (docs/operations.md, "Logs"): the route's pattern (never the raw URL,
 * whose path and query may hold serials or tokens), the status, the latency, the caller's id (never a credential)
 * and the client address (with TRUST_PROXY, the one in front of the trusted proxies). No header and no body.
 * Successful health probes and metric scrapes log at debug; a 5xx at error.
 * Answers of the OCSP responder bypass Fastify (revocation/ocsp-http.ts) and are counted in metrics only.
 */
export function logRequests(fastify: FastifyInstance, logger: PinoInstance, context: PinoLogger): void {
  // Every line logged while a request is handled carries its id: the context is opened when the request arrives (the
  // authentication before the body runs in it) and again before the handler, since reading a body leaves it.
  const withRequestId = (request: FastifyRequest, _reply: unknown, done: () => void): void =>
    context.runInContext(done, { bindings: { requestId: String(request.id) } });
  fastify.addHook('onRequest', withRequestId);
  fastify.addHook('preHandler', withRequestId);
  fastify.addHook('onResponse', async (request, reply) => {
    const actor = actorOf(request);
    const line = {
      requestId: String(request.id),
      method: request.method,
      route: request.routeOptions?.url ?? null,
      status: reply.statusCode,
      latencyMs: Math.round(reply.elapsedTime * 10) / 10,
      actorType: actor?.type ?? null,
      actorId: actor?.id ?? null,
      remoteAddress: request.ip,
    };
    if (reply.statusCode >= 500) logger.error(line, 'request failed');
    else if (reply.statusCode < 400 && PROBE_ROUTES.has(line.route ?? '')) logger.debug(line, 'request completed');
    else logger.info(line, 'request completed');
  });
}
