import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { RequestPrincipal } from '../auth/request-principal';
import { EstAuthenticator, EstCaller } from './est-authenticator';

/** The caller of an EST enrollment operation (auth/request-principal.ts), authenticated before its body is read. */
export const EST_CALLER = new RequestPrincipal<EstCaller>('EstPrincipal', (caller) => (caller.kind === 'operator' ? caller.ctx : caller.identity.ctx).actor);

/** Requires the caller on the request; authenticates it here where the pre-body hook is not installed. */
@Injectable()
export class EstGuard implements CanActivate {
  constructor(private readonly authenticator: EstAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await EST_CALLER.ensure(context.switchToHttp().getRequest<FastifyRequest>(), this.authenticator);
    return true;
  }
}

/** The caller EstGuard authenticated. */
export const EstPrincipal = (): ParameterDecorator => EST_CALLER.param();
