import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { StationAuthenticator, StationIdentity } from './station-authenticator';

const STATION = Symbol('fleetpki:station');

/**
 * Authenticates a factory station by its claim certificate before anything else looks at the request: guards run
 * before the validation pipe, so a caller without valid credentials gets a 401 and learns nothing about what the
 * body should hold. (A body the parser cannot take, too large, not JSON or too deep, is still refused first.) The
 * identity reaches the handler through @Station().
 */
@Injectable()
export class StationGuard implements CanActivate {
  constructor(private readonly stations: StationAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest & { [STATION]?: StationIdentity }>();
    request[STATION] = await this.stations.authenticate(request);
    return true;
  }
}

/** The station StationGuard authenticated. */
export const Station = createParamDecorator((_data: unknown, context: ExecutionContext): StationIdentity => {
  const identity = context.switchToHttp().getRequest<{ [STATION]?: StationIdentity }>()[STATION];
  if (!identity) throw new Error('@Station() used on a route without StationGuard');
  return identity;
});
