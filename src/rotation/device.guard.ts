import { CanActivate, createParamDecorator, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { CertificateIdentity } from '../auth/certificate-authenticator';
import { DeviceAuthenticator } from './device-authenticator';

const DEVICE = Symbol('fleetpki:device');

type DeviceRequest = FastifyRequest & { [DEVICE]?: CertificateIdentity };

/**
 * Authenticates the device and keeps its identity on the request. Installed on the renewal route as a hook that runs
 * before its body is read (auth/pre-body-authentication.ts, app.factory.ts): the token's `jti` is spent there, once.
 */
export function authenticatesDevice(devices: DeviceAuthenticator): PreBodyAuthenticator {
  return async (request: DeviceRequest) => {
    request[DEVICE] = await devices.authenticate(request);
  };
}

/**
 * Requires the device authenticated before the body was read (authenticatesDevice). Where that hook is not installed
 * (the module used without app.factory.ts), it authenticates here, still before the validation pipe. The identity
 * reaches the handler through @Device().
 */
@Injectable()
export class DeviceGuard implements CanActivate {
  constructor(private readonly devices: DeviceAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<DeviceRequest>();
    if (!request[DEVICE]) await authenticatesDevice(this.devices)(request);
    return true;
  }
}

/** The device DeviceGuard authenticated. */
export const Device = createParamDecorator((_data: unknown, context: ExecutionContext): CertificateIdentity => {
  const identity = context.switchToHttp().getRequest<{ [DEVICE]?: CertificateIdentity }>()[DEVICE];
  if (!identity) throw new Error('@Device() used on a route without DeviceGuard');
  return identity;
});
