import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's X-Request-Id when it is sane (so logs and audit events can be correlated), else a fresh one. */
export function requestIdOf(request: IncomingMessage): string {
  return givenRequestId(request) ?? randomUUID();
}

/** The caller's X-Request-Id when it is sane, else undefined. */
export function givenRequestId(request: IncomingMessage): string | undefined {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : undefined;
}
