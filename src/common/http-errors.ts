import { IncomingMessage, ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Logger } from '@nestjs/common';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, Errors } from './errors';
import { problem, PROBLEM_CONTENT_TYPE } from './problem';
import { sendProblem, toProblem } from './problem.filter';
import { DEFAULT_CACHE_CONTROL, securityHeaders } from './security-headers';

/**
 * Refusals made before a request reaches our handlers, answered as problem+json like every other error. Two layers
 * answer them: Fastify's router (a URL it cannot decode, FST_ERR_BAD_URL; a path parameter past maxParamLength), which
 * would otherwise answer plain JSON, and the HTTP server itself (a request that is not HTTP/1.1, headers larger than
 * the server's limit, a request too slow to arrive), which would otherwise answer `{"error": …}` JSON.
 */

const logger = new Logger('Errors');

/** Fastify's `frameworkErrors` option: errors of its router, before any route (or hook) runs. */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  sendProblem(reply, toProblem(error, request.id ? String(request.id) : undefined, logger));
}

/**
 * HTTP/1.1 requires a Host header (RFC 9112 §3.2). Node refuses a request without one itself, with an empty 400; the
 * server is made with `requireHostHeader: false` and the request is refused here instead, as problem+json. True when
 * it was answered.
 */
export function refuseWithoutHost(request: IncomingMessage, response: ServerResponse, tls: boolean): boolean {
  if (request.headers.host !== undefined || request.httpVersionMajor !== 1 || request.httpVersionMinor < 1) return false;
  const { status, headers, body } = rawProblem(Errors.malformedRequest('an HTTP/1.1 request needs a Host header'), tls);
  response.shouldKeepAlive = false;
  response.writeHead(status, headers.flat());
  response.end(body);
  return true;
}

/** A refusal made outside every framework, as a problem+json answer: its status, headers and body. */
function rawProblem(refusal: DomainError, tls: boolean): { status: number; headers: [string, string][]; body: string } {
  const body = JSON.stringify(problem(refusal.status, refusal.code, refusal.message));
  const headers: [string, string][] = [['Content-Type', PROBLEM_CONTENT_TYPE], ['Content-Length', String(Buffer.byteLength(body))], DEFAULT_CACHE_CONTROL, ...securityHeaders(tls)];
  return { status: refusal.status, headers, body };
}

/** Node's `clientError` codes we answer with their own status; anything else is a malformed request. */
function clientProblem(code: string | undefined): DomainError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return Errors.headersTooLarge('the request headers are larger than the limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return Errors.requestTimeout('the request did not arrive in time');
    default:
      return Errors.malformedRequest('the request is not valid HTTP/1.1');
  }
}

/**
 * The HTTP server's `clientError` handler (Fastify's `clientErrorHandler` option, bound to whichever server the
 * factory made): the request could not be parsed, so no framework sees it. Answers once on the raw socket, then closes
 * the connection (its framing is lost). When an earlier, complete request on the connection is still being answered
 * (pipelined requests), the refusal waits for that answer, so answers never come out of order. Nothing is written
 * when the peer is gone, or the broken bytes belong to a request already being answered.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return void socket.destroy();
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (inFlight && !inFlight.writableFinished) {
    // The error is in the in-flight request's own body (bad chunking, cut short): that request can never complete,
    // so, as Node does, the connection is dropped (which aborts it). Likewise when its answer is half written.
    if (!inFlight.req.complete || inFlight.headersSent) return void socket.destroy();
    let finished = false;
    inFlight.once('finish', () => {
      finished = true;
      if (!socket.destroyed) answerClientError(error, socket);
    });
    // An answer that ends without finishing (its handler failed, the peer left): nothing can follow it.
    inFlight.once('close', () => finished || socket.destroy());
    return;
  }
  if (!socket.writable) return void socket.destroy();
  const { status, headers, body } = rawProblem(clientProblem(error.code), (socket as TLSSocket).encrypted === true);
  headers.push(['Connection', 'close']);
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
  // end() flushes the answer before the FIN; the socket is destroyed once it is written.
  socket.end(head + body, () => socket.destroy());
}
