import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, Errors } from './errors';
import { Problem, problem, PROBLEM_CONTENT_TYPE } from './problem';

const HTTP_CODES: Record<number, string> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
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
    const code = HTTP_CODES[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST');
    const detail = status >= 500 ? 'internal error' : error.message;
    return problem(status, code, detail, instance);
  }
  // Fastify errors raised before a handler runs (body parsing, limits).
  const fastifyError = error as { code?: string; statusCode?: number };
  const mapped = fastifyProblem(fastifyError.code, error);
  if (mapped) return toProblem(mapped, instance, logger);
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return problem(fastifyError.statusCode, HTTP_CODES[fastifyError.statusCode] ?? 'BAD_REQUEST', 'the request was refused', instance);
  }
  logger.error(`unhandled error (request ${instance ?? '-'}): ${(error as Error)?.stack ?? String(error)}`);
  return toProblem(Errors.internal('internal error; quote the request id when reporting it'), instance, logger);
}

/** Fastify's own request errors (routing, body parsing and limits), as our typed errors. */
function fastifyProblem(code: string | undefined, error: unknown): DomainError | undefined {
  switch (code) {
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_INVALID_URL':
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

/** Sends a problem as the reply, with the headers its status calls for. */
export function sendProblem(reply: FastifyReply, body: Problem): void {
  if (body.status === 401) void reply.header('WWW-Authenticate', 'Bearer');
  if (typeof body.retryAfterSeconds === 'number') void reply.header('Retry-After', String(body.retryAfterSeconds));
  void reply.status(body.status).header('Content-Type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    sendProblem(reply, toProblem(error, request?.id ? String(request.id) : undefined, this.logger));
  }
}
