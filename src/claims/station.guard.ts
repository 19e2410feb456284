import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { RequestPrincipal } from '../auth/request-principal';
import { StationAuthenticator, StationIdentity } from './station-authenticator';

/** The factory station calling the exchange, authenticated by its claim certificate (auth/request-principal.ts). */
export const STATION = new RequestPrincipal<StationIdentity>('Station', (identity) => identity.ctx.actor);

/** Requires the station on the request; authenticates it here where the pre-body hook is not installed. */
@Injectable()
export class StationGuard implements CanActivate {
  constructor(private readonly stations: StationAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await STATION.ensure(context.switchToHttp().getRequest<FastifyRequest>(), this.stations);
    return true;
  }
}

/** The station StationGuard authenticated. */
export const Station = (): ParameterDecorator => STATION.param();
