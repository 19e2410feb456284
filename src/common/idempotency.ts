import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { Errors } from './errors';
import { ApiProblems } from './openapi';

/*
 * The vocabulary of Idempotency-Key (docs/idempotency.md): the route decorator, the key's shape, and the answer a
 * retry replays. The mechanism itself (the claim on a key, the stored answer) is database/idempotency.interceptor.ts.
 */

export const IDEMPOTENT_METADATA = 'fleetpki:idempotent';

/** 1–128 printable ASCII characters, as the claim exchange has always accepted. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/**
 * The caller of a route authenticated by a certificate (station, device, EST), kept on its request by
 * auth/request-principal.ts: API-key routes have theirs in the request context. It scopes the caller's keys.
 */
export const REQUEST_CALLER = 'fleetpkiCaller';

export interface IdempotentOptions {
  /**
   * Every success answer of the route holds a secret (an API key, a generated private key): it is never stored, and a
   * retry is told so. Answers with a PEM private key or a PKCS #12 / multipart body are recognised on any route.
   */
  secretAnswer?: boolean;
}

/**
 * A state-changing POST that honours `Idempotency-Key`: the same key and body answer what the first request answered
 * (status and body), once, for IDEMPOTENCY_RETENTION_HOURS. Documents the header and the answers it adds.
 */
export function Idempotent(options: IdempotentOptions = {}): MethodDecorator {
  return applyDecorators(
    SetMetadata(IDEMPOTENT_METADATA, { secretAnswer: options.secretAnswer === true } satisfies IdempotentOptions),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Up to 128 printable ASCII characters, unique per request you mean. A retry with the same key and body (same caller, same route) ' +
        'gets the first answer again (status and body) and changes nothing; the same key with another body is a 422 ' +
        'IDEMPOTENCY_KEY_REUSED; while the first is still running, a 409 IDEMPOTENCY_REQUEST_IN_PROGRESS (retry after Retry-After). ' +
        'Answers holding a private key are never stored: their retry is a 409 IDEMPOTENCY_ANSWER_NOT_REPLAYABLE. See docs/idempotency.md.',
      schema: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]{1,128}$' },
    }),
    ApiProblems(Errors.validation, Errors.idempotencyKeyReused, Errors.idempotencyRequestInProgress, Errors.idempotencyAnswerNotReplayable),
  );
}

/** What a first request answered, replayed for its retry (thrown by the interceptor, sent by the problem filter). */
export class ReplayedAnswer {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
    readonly body: Buffer,
  ) {}
}
