import { CanActivate, createParamDecorator, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CertificateAuthenticator, CertificateIdentity } from '../auth/certificate-authenticator';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';

export const RENEW_PATH = '/v1/certificates/renew';

const DEVICE = Symbol('fleetpki:device');

/**
 * Authenticates a device by its current certificate (mutual TLS or an x5c JWT for the renewal URL) before anything
 * else looks at the request: guards run before the validation pipe, so a caller without valid credentials gets a 401
 * and learns nothing about what the body should hold. Claim certificates are for the exchange alone. The identity
 * reaches the handler through @Device().
 */
@Injectable()
export class DeviceGuard implements CanActivate {
  private readonly audience: string;

  constructor(
    private readonly authenticator: CertificateAuthenticator,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.audience = `${config.publicBaseUrl}${RENEW_PATH}`;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest & { [DEVICE]?: CertificateIdentity }>();
    request[DEVICE] = await this.authenticator.authenticate(request, {
      audience: this.audience,
      purpose: 'device',
      untrusted: Errors.certificateUntrusted,
      accept: (certificate, authority) => {
        if (certificate.profile === 'claim' || authority.usage !== 'devices') throw Errors.notADeviceCertificate('a claim certificate cannot renew; only device and server certificates can');
      },
    });
    return true;
  }
}

/** The device DeviceGuard authenticated. */
export const Device = createParamDecorator((_data: unknown, context: ExecutionContext): CertificateIdentity => {
  const identity = context.switchToHttp().getRequest<{ [DEVICE]?: CertificateIdentity }>()[DEVICE];
  if (!identity) throw new Error('@Device() used on a route without DeviceGuard');
  return identity;
});
