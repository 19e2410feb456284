import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { createHash } from 'node:crypto';
import { ParsedCsr } from '../pki/csr';
import { CsrParser } from './csr-parser';
import { readCertificate } from '../pki/tpm/ek-chain';
import { verifyKeyAttestation } from '../pki/tpm/evidence';
import { findProfile, Profile, RenewalPolicy } from '../pki/profiles';
import { CertificateRecord, HardwareAttestation } from './certificate';
import { CertificateIdentity } from './certificate-authenticator';
import { CertificateEvents } from './certificate-events';
import { CertificateRepository } from './certificate.repository';
import { CertificatesService } from './certificates.service';
import { RenewalCampaigns } from './renewal-campaigns.port';

const DAY_MS = 86_400_000;

/** TPM evidence for a renewal's new key (docs/hardware-identity.md): base64 TPM structures, and optionally the EK certificate. */
export interface RenewalAttestation {
  akPublic: string;
  keyPublic: string;
  certifyInfo: string;
  certifySignature: string;
  ekCertificate?: string;
}

function tpmStructure(value: string, field: string): Buffer {
  const text = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw Errors.tpmEvidenceMalformed(`${field} must be base64`);
  return Buffer.from(text, 'base64');
}

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
    private readonly csrs: CsrParser,
  ) {}

  async renew(identity: CertificateIdentity, csrPem: string, attestation?: RenewalAttestation): Promise<CertificateRecord> {
    try {
      return await this.run(identity, csrPem, attestation);
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

  /**
   * A TPM-attested certificate renews only onto a key the same TPM holds (docs/hardware-identity.md, "Renewal"): the
   * AK whose credential activation proved the certified EK at enrollment must certify the new key (TPM2_Certify, a
   * key fixedTPM/fixedParent/sensitiveDataOrigin, the CSR's). The AK is fixedTPM, so the same AK means the same TPM
   * and EK; proof of the old key is the request's authentication. Without it, or with another AK or EK: a 403 that
   * says what is missing. The new certificate carries the attestation forward with the new key's name.
   */
  private attestedRenewal(old: CertificateRecord, csr: ParsedCsr, attestation: RenewalAttestation | undefined, expired: boolean, now: Date): HardwareAttestation | undefined {
    const enrolled = old.hardwareAttestation;
    if (!enrolled) return undefined;
    if (!attestation) {
      throw Errors.renewalAttestationRequired(
        `certificate ${old.id} is TPM-attested: renewing it${expired ? ' after expiry' : ''} needs "tpm" in the body, a TPM2_Certify of the new key by the AK it was enrolled with (${enrolled.akName}); ` +
          'proof of the old key alone is not enough',
      );
    }
    const verified = verifyKeyAttestation(
      {
        akPublic: tpmStructure(attestation.akPublic, 'tpm.akPublic'),
        keyPublic: tpmStructure(attestation.keyPublic, 'tpm.keyPublic'),
        certifyInfo: tpmStructure(attestation.certifyInfo, 'tpm.certifyInfo'),
        certifySignature: tpmStructure(attestation.certifySignature, 'tpm.certifySignature'),
      },
      csr.publicKeySpki,
    );
    if (verified.ak.name.toString('hex') !== enrolled.akName) {
      throw Errors.renewalAttestationMismatch(`the new key is certified by another AK than the one certificate ${old.id} was enrolled with (${enrolled.akName})`);
    }
    if (attestation.ekCertificate !== undefined) {
      const ekSha256 = createHash('sha256').update(Buffer.from(readCertificate(attestation.ekCertificate, 'tpm.ekCertificate').rawData)).digest('hex');
      if (ekSha256 !== enrolled.ekCertificateSha256) throw Errors.renewalAttestationMismatch(`the EK certificate is not the one certificate ${old.id} was enrolled with`);
    }
    return { ...enrolled, keyName: verified.key.name.toString('hex'), attestedAt: now.toISOString() };
  }

  private async run(identity: CertificateIdentity, csrPem: string, attestation?: RenewalAttestation): Promise<CertificateRecord> {
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
    const csr = await this.csrs.parse(csrPem);
    if (!policy.allowSameKey && csr.publicKey.sha256 === old.publicKeySha256) {
      throw Errors.sameKeyNotAllowed(`profile ${profile.name} requires a new key to renew`);
    }
    const hardwareAttestation = this.attestedRenewal(old, csr, attestation, now.getTime() >= notAfter, now);

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
        hardwareAttestation,
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
