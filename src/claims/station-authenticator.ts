import { Inject, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { RequestContext } from '../common/actor';
import { CertificateRecord } from '../certificates/certificate';
import { CertificateAuthenticator } from '../certificates/certificate-authenticator';
import { Clock } from '../common/clock';
import { RequestLimits } from '../auth/request-limits';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Claim } from './claim';
import { ClaimRepository } from './claim.repository';

/** A station that proved it holds a claim certificate's key. Whether the claim lets it exchange is decided after. */
export interface StationIdentity {
  /** 'aws-iot': the claim certificate authenticated to AWS IoT, whose certificate provider Lambda relays the request. */
  method: 'jwt' | 'mtls' | 'aws-iot';
  claim: Claim;
  claimCertificate: CertificateRecord;
  /** What the station says it is: the JWT `sub`, when given. */
  station: string | null;
  ctx: RequestContext;
}

/** The exchange URL is the audience: a token made for another service (or another of our routes) is refused. */
export const EXCHANGE_PATH = '/v1/provisioning/exchange';
/** Both steps of the TPM-attested enrollment (src/tpm/) take tokens made for this audience (docs/hardware-identity.md). */
export const ATTESTATION_PATH = '/v1/provisioning/attestations';

/**
 * Factory stations authenticate by their claim certificate (mutual TLS or x5c JWT): it must be one this service
 * issued as a claim certificate, under a claims authority, within its validity (which ends with the claim's
 * window). Revocation is the claim's business and is judged, and audited, after authentication.
 */
@Injectable()
export class StationAuthenticator {
  readonly audience: string;
  readonly attestationAudience: string;

  constructor(
    private readonly certificates: CertificateAuthenticator,
    private readonly claims: ClaimRepository,
    private readonly clock: Clock,
    private readonly limits: RequestLimits,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.audience = `${config.publicBaseUrl}${EXCHANGE_PATH}`;
    this.attestationAudience = `${config.publicBaseUrl}${ATTESTATION_PATH}`;
  }

  async authenticate(request: FastifyRequest): Promise<StationIdentity> {
    let claimRead: Promise<Claim | null> | undefined;
    const identity = await this.certificates.authenticate(request, {
      audience: request.url.startsWith(ATTESTATION_PATH) ? this.attestationAudience : this.audience,
      purpose: 'station',
      untrusted: Errors.claimCertificateUntrusted,
      // A read only, started beside the authentication's own (one round trip less of waiting on PostgreSQL); its
      // answer is used only once the station has authenticated, and only for the certificate it authenticated with.
      prefetch: (fingerprint) => {
        claimRead = this.claims.findByClaimCertificateFingerprint(fingerprint);
        claimRead.catch(() => undefined); // awaited below, or dropped when authentication fails: never unhandled
      },
      accept: (certificate, authority) => {
        if (certificate.profile !== 'claim') throw Errors.notAClaimCertificate(`a claim certificate is required; this is a ${certificate.profile} certificate`);
        if (authority.usage !== 'claims') throw Errors.claimCertificateUntrusted('the certificate was not issued by a claim authority');
        if (this.clock.now() >= new Date(certificate.notAfter)) {
          throw Errors.claimCertificateExpired(`the claim certificate is valid from ${certificate.notBefore} to ${certificate.notAfter}`);
        }
      },
    });
    const prefetched = await claimRead;
    const claim = prefetched?.claimCertificateId === identity.certificate.id ? prefetched : await this.claims.findByClaimCertificate(identity.certificate.id);
    if (!claim) throw Errors.notAClaimCertificate('the certificate belongs to no claim');
    // Once authenticated, so nobody without the key can spend a station's (or its claim's) budget (docs/limits.md).
    await this.limits.checkStation(claim.id, identity.certificate.fingerprint, identity.name);
    return { method: identity.method, claim, claimCertificate: identity.certificate, station: identity.name, ctx: identity.ctx };
  }
}
