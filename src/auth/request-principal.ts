import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { PreBodyAuthenticator } from './pre-body-authentication';
import type { Actor } from '../common/actor';
import { REQUEST_CALLER } from '../common/idempotency';

/** Authenticates a request from its headers and TLS socket alone (a station's claim certificate, a device's own). */
export interface RequestAuthenticator<I> {
  authenticate(request: FastifyRequest): Promise<I>;
}

/**
 * The caller of a route authenticated by a certificate, kept on its request. The route's authentication runs as a
 * hook before its body is read (`authenticatesWith`, installed by auth/pre-body-authentication.ts from
 * app.factory.ts), so a caller without valid credentials gets a 401 whatever its body and a token's `jti` is spent
 * there, once. The route's guard calls `ensure`, which authenticates only where that hook did not run (the module
 * used without app.factory.ts), still before the validation pipe; the handler reads the identity with `param()`.
 */
export class RequestPrincipal<I> {
  private readonly identities = new WeakMap<FastifyRequest, I>();

  /**
   * `name` is the parameter decorator's, for the error when a handler uses it on a route without the guard. `actorOf`
   * names the caller, kept on the request as REQUEST_CALLER (Idempotency-Key scopes keys by it).
   */
  constructor(
    private readonly name: string,
    private readonly actorOf: (identity: I) => Actor,
  ) {}

  authenticatesWith(authenticator: RequestAuthenticator<I>): PreBodyAuthenticator {
    return async (request) => {
      const identity = await authenticator.authenticate(request);
      this.identities.set(request, identity);
      (request as unknown as Record<string, unknown>)[REQUEST_CALLER] = this.actorOf(identity);
    };
  }

  async ensure(request: FastifyRequest, authenticator: RequestAuthenticator<I>): Promise<void> {
    if (!this.identities.has(request)) await this.authenticatesWith(authenticator)(request);
  }

  /** A parameter decorator giving the handler the authenticated identity. */
  param(): ParameterDecorator {
    return createParamDecorator((_data: unknown, context: ExecutionContext): I => {
      const identity = this.identities.get(context.switchToHttp().getRequest<FastifyRequest>());
      if (!identity) throw new Error(`@${this.name}() used on a route without its guard`);
      return identity;
    })();
  }
}
