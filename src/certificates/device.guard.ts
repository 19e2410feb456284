import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { RequestPrincipal } from '../auth/request-principal';
import { CertificateIdentity } from './certificate-authenticator';
import { DeviceAuthenticator } from './device-authenticator';

/** The device renewing its certificate, authenticated by that certificate (auth/request-principal.ts). */
export const DEVICE = new RequestPrincipal<CertificateIdentity>('Device', (identity) => identity.ctx.actor);

/** Requires the device on the request; authenticates it here where the pre-body hook is not installed. */
@Injectable()
export class DeviceGuard implements CanActivate {
  constructor(private readonly devices: DeviceAuthenticator) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    await DEVICE.ensure(context.switchToHttp().getRequest<FastifyRequest>(), this.devices);
    return true;
  }
}

/** The device DeviceGuard authenticated. */
export const Device = (): ParameterDecorator => DEVICE.param();
