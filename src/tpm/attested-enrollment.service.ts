import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { Pruner } from '../database/pruner';
import { AuditService } from '../audit/audit.service';
import { isWellFormedSerial } from '../claims/claims.service';
import { ExchangeResult, ExchangeService } from '../claims/exchange.service';
import { StationIdentity } from '../claims/station-authenticator';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { parseCsr } from '../pki/csr';
import { ekParameters, makeCredential, tpm2ToolsCredentialFile } from '../pki/tpm/credential';
import { readCertificate, validateEkChain } from '../pki/tpm/ek-chain';
import { verifyKeyAttestation } from '../pki/tpm/evidence';
import { parseTpm2bPublic } from '../pki/tpm/public';
import { TpmChallenge, TpmChallengeRepository, TpmRootRepository } from './tpm.repository';

export interface AttestationInput {
  deviceSerial: string;
  csr: string;
  attributes?: Record<string, string>;
  /** PEM, or base64 DER (as read from the TPM's NV index). */
  ekCertificate: string;
  /** Intermediates between the EK certificate and an allow-listed root, PEM or base64 DER. */
  ekChain?: string[];
  /** Base64 of the TPM structures (docs/hardware-identity.md). */
  ekPublic?: string;
  akPublic: string;
  keyPublic: string;
  certifyInfo: string;
  certifySignature: string;
}

export interface AttestationChallenge {
  challengeId: string;
  expiresAt: string;
  /** tpm2_activatecredential -i file. */
  credentialBlob: Buffer;
  idObject: Buffer;
  encryptedSecret: Buffer;
  akName: string;
  ekCertificateSha256: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SECRET_BYTES = 32;

function base64(value: string, field: string, max = 8192): Buffer {
  const text = value.replace(/\s+/g, '');
  if (!BASE64.test(text) || text.length > max) throw Errors.tpmEvidenceMalformed(`${field} must be base64 (at most ${max} characters)`);
  return Buffer.from(text, 'base64');
}

/**
 * TPM 2.0 attested enrollment (docs/hardware-identity.md), two steps on a claim:
 * 1. `start`: the station sends the device's EK certificate, AK and application-key public areas, the AK's
 *    TPM2_Certify of the key, and the key's CSR. Checked here: the certify evidence (src/pki/tpm/evidence.ts), the EK
 *    chain to an allow-listed manufacturer root. Answer: a credential (MakeCredential) sealed to that EK for the AK's
 *    name, holding a random secret; only its hash is stored, with the challenge, for TPM_CHALLENGE_TTL_SECONDS.
 * 2. `activate`: the device's TPM released the secret (ActivateCredential) — which it does only for an AK loaded
 *    beside that EK — so the AK, and thus the key it certified, is in the certified TPM. The challenge is consumed
 *    (once, atomically, right or wrong) and the claim's exchange issues under every rule of the claim.
 */
@Injectable()
export class AttestedEnrollmentService implements OnModuleInit {
  constructor(
    private readonly pruner: Pruner,
    private readonly exchanges: ExchangeService,
    private readonly roots: TpmRootRepository,
    private readonly challenges: TpmChallengeRepository,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    // A challenge is worth nothing once expired (answered or not): the Pruner deletes it (docs/operations.md, "Pruning").
    this.pruner.register('tpm_enrollment_challenges', (now, limit) => this.challenges.prune(now, limit));
  }

  async start(identity: StationIdentity, input: AttestationInput): Promise<AttestationChallenge> {
    try {
      return await this.challenge(identity, input);
    } catch (err) {
      await this.refused(identity, err, { step: 'attestation', deviceSerial: input.deviceSerial });
      throw err;
    }
  }

  async activate(identity: StationIdentity, challengeId: string, secretBase64: string, idempotencyKey: string | undefined): Promise<ExchangeResult> {
    let challenge: TpmChallenge;
    try {
      challenge = await this.answer(identity, challengeId, secretBase64);
    } catch (err) {
      await this.refused(identity, err, { step: 'activation', challengeId: UUID.test(challengeId) ? challengeId : null });
      throw err;
    }
    // The exchange audits its own refusals (provisioning.refused) and the issuance (certificate.issued, with the attestation).
    return this.exchanges.exchange(
      identity,
      {
        deviceSerial: challenge.deviceSerial,
        csr: challenge.request.csr,
        attributes: challenge.request.attributes,
        attestation: { ...challenge.attestation, attestedAt: this.clock.now().toISOString() },
      },
      idempotencyKey,
    );
  }

  private async challenge(identity: StationIdentity, input: AttestationInput): Promise<AttestationChallenge> {
    const claim = identity.claim;
    this.exchanges.checkClaimUsable(identity);
    if (claim.attestation === 'off') throw Errors.attestationNotEnabled(`claim ${claim.id} does not take TPM-attested enrollments (its attestation is off)`);
    if (!isWellFormedSerial(input.deviceSerial)) throw Errors.validation('deviceSerial must be 1-64 letters, digits or . _ : / - and start with a letter or digit');
    const csr = parseCsr(input.csr);
    const evidence = {
      akPublic: base64(input.akPublic, 'akPublic'),
      keyPublic: base64(input.keyPublic, 'keyPublic'),
      certifyInfo: base64(input.certifyInfo, 'certifyInfo'),
      certifySignature: base64(input.certifySignature, 'certifySignature'),
    };
    const verified = verifyKeyAttestation(evidence, csr.publicKeySpki);
    const now = this.clock.now();
    const ek = await validateEkChain(
      readCertificate(input.ekCertificate, 'ekCertificate'),
      (input.ekChain ?? []).map((pem, i) => readCertificate(pem, `ekChain[${i}]`)),
      await this.roots.list(),
      now,
    );
    const ekPublic = input.ekPublic ? parseTpm2bPublic(base64(input.ekPublic, 'ekPublic'), 'ekPublic') : undefined;
    const secret = randomBytes(SECRET_BYTES);
    const credential = makeCredential(ekParameters(ek.publicKey, ekPublic), verified.ak.name, secret);
    const challenge: TpmChallenge = {
      id: randomUUID(),
      claimId: claim.id,
      deviceSerial: input.deviceSerial,
      request: { csr: input.csr, ...(input.attributes ? { attributes: input.attributes } : {}) },
      secretSha256: createHash('sha256').update(secret).digest('hex'),
      attestation: {
        type: 'tpm2',
        ekCertificateSha256: ek.fingerprint,
        ekIssuer: ek.issuer,
        manufacturerRootId: ek.root.id,
        akName: verified.ak.name.toString('hex'),
        keyName: verified.key.name.toString('hex'),
      },
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.config.tpm.challengeTtlSeconds * 1000).toISOString(),
      consumedAt: null,
    };
    await this.challenges.insert(challenge);
    await this.audit.record(identity.ctx, {
      action: 'provisioning.attestation-challenged',
      target: { type: 'claim', id: claim.id },
      details: { deviceSerial: input.deviceSerial, challengeId: challenge.id, expiresAt: challenge.expiresAt, ...challenge.attestation, ...this.who(identity) },
    });
    return {
      challengeId: challenge.id,
      expiresAt: challenge.expiresAt,
      credentialBlob: tpm2ToolsCredentialFile(credential),
      idObject: credential.idObject,
      encryptedSecret: credential.encryptedSecret,
      akName: challenge.attestation.akName,
      ekCertificateSha256: ek.fingerprint,
    };
  }

  /** The challenge, consumed: found for this claim, unused, unexpired, and answered with its secret. */
  private async answer(identity: StationIdentity, challengeId: string, secretBase64: string): Promise<TpmChallenge> {
    const challenge = UUID.test(challengeId) ? await this.challenges.find(challengeId) : null;
    // Another claim's challenge is as good as absent: nothing tells one station about another's devices.
    if (!challenge || challenge.claimId !== identity.claim.id) throw Errors.tpmChallengeNotFound('no such attestation challenge for this claim');
    if (challenge.consumedAt !== null) throw Errors.tpmChallengeUsed(`the challenge was answered already (at ${challenge.consumedAt}); challenges are single use: start a new attestation`);
    const now = this.clock.now();
    if (now >= new Date(challenge.expiresAt)) throw Errors.tpmChallengeExpired(`the challenge expired at ${challenge.expiresAt}; start a new attestation`);
    // Consumed before the secret is compared: a wrong answer spends the challenge too, so secrets cannot be guessed.
    if (!(await this.challenges.consume(challenge.id, now.toISOString()))) throw Errors.tpmChallengeUsed('the challenge was answered already; challenges are single use');
    const answered = createHash('sha256').update(base64(secretBase64, 'secret', 128)).digest();
    if (!timingSafeEqual(answered, Buffer.from(challenge.secretSha256, 'hex'))) {
      throw Errors.tpmActivationFailed('the secret is not the one sealed in the credential: the AK is not in the TPM of the certified EK (the challenge is now spent)');
    }
    return challenge;
  }

  private async refused(identity: StationIdentity, err: unknown, details: Record<string, unknown>): Promise<void> {
    if (!(err instanceof DomainError) || err.status >= 500) return;
    await this.audit.record(identity.ctx, {
      action: 'provisioning.refused',
      target: { type: 'claim', id: identity.claim.id },
      details: { ...details, ...this.who(identity), code: err.code, reason: err.message.slice(0, 300) },
    });
  }

  private who(identity: StationIdentity): Record<string, unknown> {
    return { station: { method: identity.method, claimCertificate: identity.claimCertificate.fingerprint, name: identity.station } };
  }
}
