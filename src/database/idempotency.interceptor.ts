import { createHash } from 'node:crypto';
import { CallHandler, ExecutionContext, Inject, Injectable, Logger, NestInterceptor, OnModuleInit } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Observable } from 'rxjs';
import { REQUEST_CONTEXT } from '../common/access.decorators';
import { Actor, RequestContext } from '../common/actor';
import { canonicalJson } from '../common/canonical-json';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_KEY_PATTERN, IDEMPOTENT_METADATA, IdempotentOptions, REQUEST_CALLER, ReplayedAnswer } from '../common/idempotency';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { IdempotencyRecords, IdempotencyTicket } from './idempotency-records';
import { Pruner } from './pruner';

/**
 * How long a request owns the key it claimed. Longer than any request runs; a process that dies mid-request leaves
 * its key in progress this long, then a retry takes it over and runs the request again (docs/idempotency.md).
 */
export const IDEMPOTENCY_LEASE_MS = 5 * 60_000;

/** Pruning of expired records: this often, on every process (a DELETE by the expires_at index). */

const TICKET = Symbol('idempotencyTicket');

/** Headers of an answer that are not part of what a replay sends: per request, recomputed, or per connection. */
const UNREPLAYED_HEADERS = new Set(['content-length', 'x-request-id', 'date', 'connection', 'keep-alive', 'transfer-encoding', 'set-cookie']);

/**
 * Answers never stored, because they carry a private key (docs/idempotency.md): PKCS #12 files, EST serverkeygen's
 * multipart answer, and any body with a PEM private key (claims created with generateKey). A secret never lands in the
 * database; the retry of such a request is told so (IDEMPOTENCY_ANSWER_NOT_REPLAYABLE) instead of issuing again.
 */
function holdsSecret(contentType: string, body: Buffer): boolean {
  return /pkcs12|pkcs8|multipart\//i.test(contentType) || body.includes('PRIVATE KEY');
}

/** Body fields left out of the request hash: passwords (of a PKCS #12 answer, which is never replayed) are secrets. */
const SECRET_FIELD = /password$/i;

function withoutSecrets(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(withoutSecrets);
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).filter(([name]) => !SECRET_FIELD.test(name)).map(([name, v]) => [name, withoutSecrets(v)]));
}

/** SHA-256 over the method, the URL with its query, and the canonical body (JSON with sorted keys, or the bytes). */
export function requestHash(method: string, url: string, body: unknown): string {
  const hash = createHash('sha256').update(method).update('\n').update(url).update('\n');
  if (Buffer.isBuffer(body)) hash.update(body);
  else if (typeof body === 'string') hash.update(body, 'utf8');
  else if (body !== undefined) hash.update(canonicalJson(withoutSecrets(body)));
  return hash.digest('hex');
}

/**
 * Idempotency-Key on the routes marked @Idempotent() (docs/idempotency.md). Runs after the guards, so the caller is
 * known: a key belongs to one caller on one route. The first request with a key claims it in the database; a Fastify
 * onSend hook (`onSend`, installed by app.factory.ts) stores its answer — a success — or frees the key — a failure,
 * which changed nothing, so its retry runs afresh. A retry gets the stored answer through the problem filter.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor, OnModuleInit {
  private readonly logger = new Logger('Idempotency');

  constructor(
    private readonly reflector: Reflector,
    private readonly records: IdempotencyRecords,
    private readonly clock: Clock,
    private readonly pruner: Pruner,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Records older than IDEMPOTENCY_RETENTION_HOURS are deleted by the Pruner, in bounded batches. */
  onModuleInit(): void {
    this.pruner.register('idempotency_records', (now, limit) => this.records.prune(now, limit));
  }

  /** Runs a pruning pass now; answers how many idempotency records it deleted. */
  async prune(): Promise<number> {
    return (await this.pruner.pruneOnce()).idempotency_records ?? 0;
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const options = context.getType() === 'http' ? this.reflector.get<IdempotentOptions | undefined>(IDEMPOTENT_METADATA, context.getHandler()) : undefined;
    if (!options) return next.handle();
    const request = context.switchToHttp().getRequest<FastifyRequest & Record<string | symbol, unknown>>();
    const header = request.headers[IDEMPOTENCY_KEY_HEADER];
    if (header === undefined) return next.handle();
    if (typeof header !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(header)) throw Errors.validation('Idempotency-Key must be 1-128 printable ASCII characters');
    const actor = (request[REQUEST_CONTEXT] as RequestContext | undefined)?.actor ?? (request[REQUEST_CALLER] as Actor | undefined);
    if (!actor) throw new Error(`@Idempotent() on ${request.method} ${request.routeOptions.url}, a route whose caller is not known`);

    const now = this.clock.now().getTime();
    const ticket: IdempotencyTicket = {
      scope: `${actor.type}:${actor.id} ${request.method} ${request.routeOptions.url ?? request.url}`,
      key: header,
      lockedUntil: new Date(now + IDEMPOTENCY_LEASE_MS).toISOString(),
    };
    const claim = await this.records.claim({
      ...ticket,
      requestSha256: requestHash(request.method, request.url, request.body),
      now: new Date(now).toISOString(),
      expiresAt: new Date(now + this.config.idempotency.retentionHours * 3_600_000).toISOString(),
    });
    switch (claim.kind) {
      case 'owner':
        request[TICKET] = { ...ticket, secretAnswer: options.secretAnswer === true };
        return next.handle();
      case 'mismatch':
        throw Errors.idempotencyKeyReused('this Idempotency-Key was used for a different request');
      case 'in-progress':
        throw Errors.idempotencyRequestInProgress('a request with this Idempotency-Key is still running: retry after a moment', { retryAfterSeconds: 1 });
      case 'not-replayable':
        throw Errors.idempotencyAnswerNotReplayable(
          `a request with this Idempotency-Key succeeded (${claim.statusCode}${claim.headers.location ? `, ${claim.headers.location}` : ''}) but its answer held a private key, ` +
            'which is never stored, so it cannot be sent again; nothing was done now',
        );
      case 'replay':
        throw new ReplayedAnswer(claim.statusCode, claim.headers, claim.body);
    }
  }

  /**
   * Fastify onSend hook: the owner's answer is stored (a success) or its key freed (anything else) before the answer
   * goes out. A failure to store is logged, not answered: the request's effect is committed and its answer is right.
   */
  readonly onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const ticket = (request as unknown as Record<symbol, (IdempotencyTicket & { secretAnswer: boolean }) | undefined>)[TICKET];
    if (!ticket) return payload;
    (request as unknown as Record<symbol, unknown>)[TICKET] = undefined;
    try {
      const status = reply.statusCode;
      if (status < 200 || status >= 300) return payload;
      const headers = replayedHeaders(reply);
      const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.isBuffer(payload) ? payload : payload == null ? Buffer.alloc(0) : undefined;
      if (body === undefined || ticket.secretAnswer || holdsSecret(headers['content-type'] ?? '', body)) await this.records.completeWithoutAnswer(ticket, { statusCode: status, headers });
      else await this.records.complete(ticket, { statusCode: status, headers, body });
    } catch (err) {
      this.logger.error(`could not store the answer of Idempotency-Key request ${String(request.id)}: ${String(err)}`);
    } finally {
      if (reply.statusCode < 200 || reply.statusCode >= 300) await this.records.release(ticket).catch((err: unknown) => this.logger.warn(`could not free an Idempotency-Key: ${String(err)}`));
    }
    return payload;
  };
}

function replayedHeaders(reply: FastifyReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    const lower = name.toLowerCase();
    if (value === undefined || UNREPLAYED_HEADERS.has(lower)) continue;
    headers[lower] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}
