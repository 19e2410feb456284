import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { parseCsr } from '../pki/csr';
import { findProfile, Profile, RenewalPolicy } from '../pki/profiles';
import { CertificateRecord } from './certificate';
import { CertificateIdentity } from './certificate-authenticator';
import { CertificateEvents } from './certificate-events';
import { CertificateRepository } from './certificate.repository';
import { CertificatesService } from './certificates.service';
import { RenewalCampaigns } from './renewal-campaigns.port';

const DAY_MS = 86_400_000;

/**
 * A device renews its own certificate, authenticated by it: a new key (unless the profile allows the same one),
 * inside the profile's renewal window (or while a rotation campaign covers it), never when revoked or already
 * renewed. The new certificate keeps the thing name, claim and AWS IoT settings; the old one is superseded,
 * stays valid for the grace period, and then leaves AWS IoT through the outbox.
 */
@Injectable()
export class RenewalService {
  constructor(
    private readonly certificates: CertificatesService,
    private readonly records: CertificateRepository,
    private readonly authorities: AuthoritiesService,
    private readonly campaigns: RenewalCampaigns,
    private readonly events: CertificateEvents,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async renew(identity: CertificateIdentity, csrPem: string): Promise<CertificateRecord> {
    try {
      return await this.run(identity, csrPem);
    } catch (err) {
      // The device proved its key: its refusals are audited (401s never get here).
      if (err instanceof DomainError && err.status < 500) {
        await this.audit.record(identity.ctx, {
          action: 'certificate.renewal-refused',
          target: { type: 'certificate', id: identity.certificate.id },
          details: { method: identity.method, code: err.code, reason: err.message.slice(0, 300) },
        });
      }
      throw err;
    }
  }

  /** The profile's renewal policy with the operator's switches (RENEWAL_SAME_KEY_PROFILES, RENEWAL_AFTER_EXPIRY_DAYS); undefined: never. */
  private policyOf(profile: Profile): RenewalPolicy | undefined {
    if (!profile.renewal) return undefined;
    const { sameKeyProfiles, afterExpiryDays } = this.config.renewal;
    return {
      ...profile.renewal,
      allowSameKey: profile.renewal.allowSameKey || sameKeyProfiles.includes(profile.name),
      afterExpiryDays: afterExpiryDays[profile.name] ?? profile.renewal.afterExpiryDays,
    };
  }

  private async run(identity: CertificateIdentity, csrPem: string): Promise<CertificateRecord> {
    const old = identity.certificate;
    const profile = findProfile(old.profile);
    const policy = this.policyOf(profile);
    if (!policy) throw Errors.renewalNotAllowed(`certificates of profile ${profile.name} do not renew themselves`);
    if (old.status === 'revoked') throw Errors.certificateRevoked('a revoked certificate cannot renew');
    if (old.status === 'superseded') throw Errors.certificateSuperseded(`this certificate was already renewed by ${old.replacedById}`);

    const now = this.clock.now();
    const notBefore = new Date(old.notBefore).getTime();
    const notAfter = new Date(old.notAfter).getTime();
    if (now.getTime() >= notAfter) {
      if (policy.afterExpiryDays === 0) throw Errors.certificateExpired(`the certificate expired at ${old.notAfter}; profile ${profile.name} does not renew after expiry`);
      if (now.getTime() > notAfter + policy.afterExpiryDays * DAY_MS) {
        throw Errors.certificateExpired(`the certificate expired at ${old.notAfter}; profile ${profile.name} renews at most ${policy.afterExpiryDays} days after expiry`);
      }
    }
    const windowOpens = new Date(notAfter - (notAfter - notBefore) * policy.windowFraction);
    if (now < windowOpens && !(await this.campaigns.coveredByOpenCampaign(old.id))) {
      throw Errors.renewalNotYetAllowed(`renewal opens at ${windowOpens.toISOString()} (the last ${Math.round(policy.windowFraction * 100)}% of the lifetime), unless a rotation campaign covers the certificate`, {
        renewableFrom: windowOpens.toISOString(),
      });
    }
    const csr = parseCsr(csrPem);
    if (!policy.allowSameKey && csr.publicKey.sha256 === old.publicKeySha256) {
      throw Errors.sameKeyNotAllowed(`profile ${profile.name} requires a new key to renew`);
    }

    const graceUntil = new Date(now.getTime() + this.config.renewal.graceSeconds * 1000);
    // A retiring CA issues nothing new: its certificates renew under its successor.
    const authorityId = await this.authorities.currentIssuerId(old.authorityId);
    return this.certificates.issue(
      identity.ctx,
      { authorityId, csr: csrPem, profile: old.profile, thingName: old.thingName ?? undefined, metadata: old.metadata ?? undefined },
      {
        parsedCsr: csr,
        claimId: old.claimId ?? undefined,
        iotThing: old.iotThing ?? undefined,
        iotTargetId: old.iotTargetId ?? undefined,
        replacesId: old.id,
        auditDetails: { renewalOf: old.id, method: identity.method },
        inTransaction: async (replacement) => {
          if (!(await this.records.markSuperseded(old.id, replacement.id, now.toISOString()))) {
            throw Errors.certificateSuperseded('this certificate was renewed or revoked meanwhile');
          }
          await this.campaigns.markRenewed(old.id, replacement.id, now.toISOString());
          await this.events.superseded(old, replacement, graceUntil);
          await this.audit.record(identity.ctx, {
            action: 'certificate.superseded',
            target: { type: 'certificate', id: old.id },
            details: { replacedBy: replacement.id, graceUntil: graceUntil.toISOString() },
          });
        },
      },
    );
  }
}
