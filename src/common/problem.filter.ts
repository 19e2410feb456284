import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, Errors } from './errors';
import { ReplayedAnswer } from './idempotency';
import { Problem, problem, PROBLEM_CONTENT_TYPE } from './problem';

/** The code of a framework HttpException by its status; any other 4xx is BAD_REQUEST (with its own status). */
const HTTP_CODES: Record<number, string> = {
  400: Errors.validation.code,
  401: Errors.unauthenticated.code,
  403: Errors.forbidden.code,
  404: Errors.notFound.code,
  405: Errors.methodNotAllowed.code,
  408: Errors.requestTimeout.code,
  413: Errors.payloadTooLarge.code,
  414: Errors.uriTooLong.code,
  415: Errors.unsupportedMediaType.code,
  431: Errors.headersTooLarge.code,
};

/** Maps any error to problem+json. Unknown errors become a neutral 500; their details go to the log only. */
export function toProblem(error: unknown, instance: string | undefined, logger: Logger): Problem {
  if (error instanceof DomainError) {
    return problem(error.status, error.code, error.message, instance, error.extra);
  }
  // Nest's Fastify adapter hands Fastify's own 4xx errors (body parsing, limits) over wrapped in an
  // HttpException; classify them by the original error's code below.
  const cause = error instanceof HttpException ? (error.cause as { code?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string' && cause.code.startsWith('FST_')) error = cause;
  if (error instanceof HttpException && error.getStatus() === 404) {
    return toProblem(Errors.notFound('no such route'), instance, logger);
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const code = HTTP_CODES[status] ?? (status >= 500 ? Errors.internal.code : Errors.badRequest.code);
    const detail = status >= 500 ? 'internal error' : error.message;
    return problem(status, code, detail, instance);
  }
  // Fastify errors raised before a handler runs (body parsing, limits).
  const fastifyError = error as { code?: string; statusCode?: number };
  const mapped = fastifyProblem(fastifyError.code, error);
  if (mapped) return toProblem(mapped, instance, logger);
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return problem(fastifyError.statusCode, HTTP_CODES[fastifyError.statusCode] ?? Errors.badRequest.code, 'the request was refused', instance);
  }
  logger.error(`unhandled error (request ${instance ?? '-'}): ${(error as Error)?.stack ?? String(error)}`);
  return toProblem(Errors.internal('internal error; quote the request id when reporting it'), instance, logger);
}

/** Fastify's own request errors (routing, body parsing and limits), as our typed errors. */
function fastifyProblem(code: string | undefined, error: unknown): DomainError | undefined {
  switch (code) {
    case 'FST_ERR_BAD_URL':
      return Errors.invalidUrl('the URL is not valid (malformed percent-encoding)');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return Errors.uriTooLong('a path parameter is longer than the limit');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return Errors.payloadTooLarge('request body is larger than the limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return Errors.unsupportedMediaType('send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return Errors.malformedJson('request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return Errors.validation('Content-Length does not match the body');
  }
  const statusCode = (error as { statusCode?: number }).statusCode;
  if (error instanceof SyntaxError || (statusCode === 400 && /JSON/i.test(String((error as Error).message)))) {
    return Errors.malformedJson('request body is not valid JSON');
  }
  return undefined;
}

/**
 * Paths whose protocol answers errors in plain text: EST (RFC 7030 §4.2.3 wants a human-readable text body; docs/est.md).
 * The answer keeps the problem's status and headers (WWW-Authenticate on a 401); its body is "<CODE>: <detail>". A
 * client whose Accept names application/problem+json gets the problem+json body, as on every other route.
 */
export const PLAIN_TEXT_ERROR_PATHS: readonly string[] = ['/.well-known/est/'];

function wantsPlainText(reply: FastifyReply): boolean {
  const request = reply.request as FastifyRequest | undefined;
  const url = request?.url;
  if (typeof url !== 'string' || !PLAIN_TEXT_ERROR_PATHS.some((prefix) => url.startsWith(prefix))) return false;
  return !String(request?.headers.accept ?? '').toLowerCase().includes(PROBLEM_CONTENT_TYPE);
}

/** Headers a route may set for its success answer that must not go out with a problem. */
const SUCCESS_ONLY_HEADERS = ['Cache-Control', 'ETag', 'Last-Modified', 'Expires', 'Content-Disposition', 'Content-Transfer-Encoding'];

/**
 * Sends a problem as the reply. A problem is never cached, whatever the route set before it failed: a cached 404 for
 * a CA certificate would hide it after it exists, and a file name or validator of the success answer does not
 * describe the error.
 */
export function sendProblem(reply: FastifyReply, body: Problem): void {
  for (const name of SUCCESS_ONLY_HEADERS) void reply.removeHeader(name);
  void reply.header('Cache-Control', 'no-store');
  if (body.status === 401) void reply.header('WWW-Authenticate', 'Bearer');
  if (typeof body.retryAfterSeconds === 'number') void reply.header('Retry-After', String(body.retryAfterSeconds));
  if (wantsPlainText(reply)) {
    void reply.status(body.status).header('Content-Type', 'text/plain; charset=utf-8').send(`${body.code}: ${body.detail}\n`);
    return;
  }
  void reply.status(body.status).header('Content-Type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    if (error instanceof ReplayedAnswer) {
      // An Idempotency-Key retry: the first request's answer, byte for byte (database/idempotency.interceptor.ts).
      for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
      void reply.status(error.status).send(error.body);
      return;
    }
    sendProblem(reply, toProblem(error, request?.id ? String(request.id) : undefined, this.logger));
  }
}
