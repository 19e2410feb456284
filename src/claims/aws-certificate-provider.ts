import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthoritiesService } from '../authorities/authorities.service';
import { RequestLimits } from '../auth/request-limits';
import { RequestContext } from '../common/actor';
import { CertificateRecord, effectiveStatus } from '../certificates/certificate';
import { CertificateRepository } from '../certificates/certificate.repository';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { csrSubjectAttributes, deviceSerialOf } from '../pki/est';
import { ClaimRepository } from './claim.repository';
import { ExchangeResult, ExchangeService } from './exchange.service';

/**
 * What AWS IoT hands the certificate provider Lambda for each `CreateCertificateFromCsr` (AWS IoT developer guide,
 * "Self-managed certificate signing using AWS IoT Core certificate provider", Lambda function input), relayed as is by
 * integrations/aws-lambda/src/certificate-provider.ts. This interface and `fromProviderEvent` are the one place its
 * shape is known (docs/aws-fleet-provisioning.md).
 */
export interface AwsCertificateProviderEvent {
  /** The device's CSR, PEM. */
  certificateSigningRequest: string;
  /** The certificate id (SHA-256 of the DER) of the certificate the device connected with: its claim certificate. */
  principalId: string;
  /** The MQTT client id of the connection. */
  clientId: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** The profiles whose certificates connect to AWS IoT as clients (src/pki/profiles.ts). */
const CLIENT_PROFILES = new Set(['device', 'claim']);

/** Checks the relayed event's shape (the controller's DTO validated the types; this the meaning). */
export function fromProviderEvent(event: AwsCertificateProviderEvent): AwsCertificateProviderEvent {
  const principalId = event.principalId.toLowerCase();
  if (!HEX64.test(principalId)) throw Errors.validation('principalId must be an AWS IoT certificate id (64 hex characters)');
  return { certificateSigningRequest: event.certificateSigningRequest, principalId, clientId: event.clientId };
}

/** The status AWS IoT's pre-authentication Lambda asks about at CONNECT. */
export interface AwsCertificateStatus {
  certificateId: string;
  known: boolean;
  status: string | null;
  /** True only for a certificate of ours that is active and inside its validity: the connection may go on. */
  authenticated: boolean;
  revokedAt: string | null;
}

/**
 * AWS IoT fleet provisioning by claim, signed by our CA (docs/aws-fleet-provisioning.md). The claim certificate AWS
 * IoT authenticated (the event's principalId is its certificate id, which is our SHA-256 fingerprint) names the claim;
 * the CSR subject names the device (serialNumber, else CN, as EST does); then the factory exchange runs with every rule
 * of the claim (window, revocation, pattern, allow-list, quota, idempotency, audit, profile, thing name). A refusal is
 * a 4xx the Lambda turns into a failed invocation; nothing is issued on any refusal.
 */
@Injectable()
export class AwsCertificateProvider {
  constructor(
    private readonly exchanges: ExchangeService,
    private readonly claims: ClaimRepository,
    private readonly certificates: CertificateRepository,
    private readonly authorities: AuthoritiesService,
    private readonly limits: RequestLimits,
    private readonly clock: Clock,
  ) {}

  async provide(ctx: RequestContext, raw: AwsCertificateProviderEvent): Promise<ExchangeResult> {
    const event = fromProviderEvent(raw);
    // The certificate with its authority in one query, its claim beside it (one round trip of waiting on PostgreSQL);
    // judged in the same order as when they were read one after another.
    const [found, claim] = await Promise.all([this.certificates.findByFingerprintWithAuthority(event.principalId), this.claims.findByClaimCertificateFingerprint(event.principalId)]);
    if (!found || found.certificate.profile !== 'claim') {
      throw Errors.awsPrincipalNotAClaim('the connecting certificate (principalId) is not a claim certificate of this service');
    }
    const claimCertificate = found.certificate;
    const authority = found.authority ?? (await this.authorities.get(claimCertificate.authorityId));
    if (authority.usage !== 'claims') throw Errors.awsPrincipalNotAClaim('the connecting certificate was not issued by a claims authority');
    if (this.clock.now() >= new Date(claimCertificate.notAfter)) {
      throw Errors.claimCertificateExpired(`the claim certificate is valid from ${claimCertificate.notBefore} to ${claimCertificate.notAfter}`);
    }
    if (!claim) throw Errors.awsPrincipalNotAClaim('the connecting certificate belongs to no claim');
    // The station budget of docs/limits.md, keyed by the claim certificate and the MQTT client id.
    await this.limits.checkStation(claim.id, claimCertificate.fingerprint, event.clientId);

    const deviceSerial = deviceSerialOf(csrSubjectAttributes(event.certificateSigningRequest));
    if (deviceSerial === undefined) throw Errors.invalidSubject('name the device in the CSR subject: serialNumber (2.5.4.5), or the common name');
    // A retry (AWS retries, or the device publishes the same request again) is the same claim and the same CSR: the
    // Idempotency-Key of the exchange, scoped to the claim, returns the certificate issued the first time.
    const idempotencyKey = `aws-csr-${createHash('sha256').update(event.certificateSigningRequest).digest('hex')}`;
    const identity = { method: 'aws-iot' as const, claim, claimCertificate, station: event.clientId.slice(0, 128), ctx };
    const result = await this.exchanges.exchange(identity, { deviceSerial, csr: event.certificateSigningRequest }, idempotencyKey);
    // A retry answers with the certificate issued the first time; once that one is revoked it must not reach AWS IoT
    // again (AWS would create it anew from our answer): refused, and the device provisions with a new key.
    if (result.replayed && result.certificate.status === 'revoked') {
      throw Errors.replayCertificateRevoked(`the certificate issued earlier for this claim and CSR (serial ${deviceSerial}) was revoked; provision with a new key`);
    }
    return result;
  }

  /** A certificate's status, by AWS IoT certificate id (= our SHA-256 fingerprint), for the pre-authentication Lambda. */
  async status(certificateId: string): Promise<AwsCertificateStatus> {
    const id = certificateId.toLowerCase();
    if (!HEX64.test(id)) throw Errors.validation('certificateId must be 64 hex characters (the SHA-256 of the certificate DER)');
    const record = await this.certificates.findByFingerprint(id);
    if (!record) return { certificateId: id, known: false, status: null, authenticated: false, revokedAt: null };
    return { certificateId: id, known: true, status: effectiveStatus(record, this.clock.now()), authenticated: await this.connectable(record), revokedAt: record.revokedAt };
  }

  /**
   * A client certificate (device or claim profile: a server certificate is not one), not revoked and inside its
   * validity, issued by an authority chain that is usable: no authority up to the root disabled (how a compromised CA is
   * taken out), pending, or past its own validity. A superseded certificate still connects: renewal keeps it valid for
   * its grace period, and revocation ends it at once.
   */
  private async connectable(record: CertificateRecord): Promise<boolean> {
    const now = this.clock.now();
    if (!CLIENT_PROFILES.has(record.profile)) return false;
    if (record.status === 'revoked' || now < new Date(record.notBefore) || now >= new Date(record.notAfter)) return false;
    let authorityId: string | null = record.authorityId;
    for (let hops = 0; authorityId !== null && hops < 16; hops++) {
      const authority = await this.authorities.get(authorityId);
      if (authority.status === 'disabled' || authority.status === 'pending' || now >= new Date(authority.notAfter)) return false;
      authorityId = authority.parentId;
    }
    return authorityId === null;
  }
}
