import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { RequestLimits } from '../auth/request-limits';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { CertificateAuthenticator, CertificateIdentity } from './certificate-authenticator';

export const RENEW_PATH = '/v1/certificates/renew';

/**
 * Devices authenticate by their current certificate (mutual TLS, or an x5c JWT whose audience is the renewal URL).
 * Claim certificates are for the exchange alone.
 */
@Injectable()
export class DeviceAuthenticator {
  private readonly audience: string;

  constructor(
    private readonly certificates: CertificateAuthenticator,
    private readonly limits: RequestLimits,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.audience = `${config.publicBaseUrl}${RENEW_PATH}`;
  }

  async authenticate(request: FastifyRequest): Promise<CertificateIdentity> {
    const identity = await this.certificates.authenticate(request, {
      audience: this.audience,
      purpose: 'device',
      untrusted: Errors.certificateUntrusted,
      // An expired certificate may still renew within RENEWAL_AFTER_EXPIRY_DAYS; RenewalService decides and audits.
      expiryJudgedByRoute: true,
      accept: (certificate, authority) => {
        if (certificate.profile === 'claim' || authority.usage !== 'devices') throw Errors.notADeviceCertificate('a claim certificate cannot renew; only device and server certificates can');
      },
    });
    // Once authenticated, so nobody without the key can spend a device's budget (docs/limits.md).
    await this.limits.checkDevice(identity.certificate.fingerprint);
    return identity;
  }
}
