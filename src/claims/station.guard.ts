import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { StationAuthenticator, StationIdentity } from './station-authenticator';

const STATION = Symbol('fleetpki:station');

type StationRequest = FastifyRequest & { [STATION]?: StationIdentity };

/**
 * Authenticates a factory station by its claim certificate and keeps its identity on the request. Installed on the
 * exchange route as a hook that runs before its body is read (auth/pre-body-authentication.ts, app.factory.ts): a
 * caller without valid credentials gets a 401 whatever its body, and the token's `jti` is spent there, once.
 */
export function authenticatesStation(stations: StationAuthenticator): PreBodyAuthenticator {
  return async (request: StationRequest) => {
    request[STATION] = await stations.authenticate(request);
  };
}

/**
 * Requires the station authenticated before the body was read (authenticatesStation). Where that hook is not
 * installed (the module used without app.factory.ts), it authenticates here, still before the validation pipe. The
 * identity reaches the handler through @Station().
 */
@Injectable()
export class StationGuard implements CanActivate {
  constructor(private readonly stations: StationAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<StationRequest>();
    if (!request[STATION]) await authenticatesStation(this.stations)(request);
    return true;
  }
}

/** The station StationGuard authenticated. */
export const Station = createParamDecorator((_data: unknown, context: ExecutionContext): StationIdentity => {
  const identity = context.switchToHttp().getRequest<{ [STATION]?: StationIdentity }>()[STATION];
  if (!identity) throw new Error('@Station() used on a route without StationGuard');
  return identity;
});
