import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A MakeCredential challenge of an attested enrollment (docs/hardware-identity.md): single use (consumed by one
 * conditional UPDATE … WHERE consumed_at IS NULL, on any replica) and valid until expires_at.
 */
@Entity('tpm_enrollment_challenges')
export class TpmEnrollmentChallengeEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  /** The claim whose station asked; only that claim's stations may answer it. */
  @Column({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  @Column({ name: 'device_serial', type: 'varchar', length: 64 }) deviceSerial: string;
  /** JSON: the CSR and thing attributes to exchange once the challenge is answered. */
  @Column({ type: 'text' }) request: string;
  /** SHA-256 of the secret sealed in the credential (never the secret itself), hex. */
  @Column({ name: 'secret_sha256', type: 'varchar', length: 64 }) secretSha256: string;
  /** JSON: what the evidence proved (EK certificate, root, AK and key names). */
  @Column({ type: 'text' }) attestation: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Index('idx_tpm_enrollment_challenges_expires')
  @Column({ name: 'expires_at', type: 'varchar', length: 32 }) expiresAt: string;
  @Column({ name: 'consumed_at', type: 'varchar', length: 32, nullable: true }) consumedAt: string | null;
}
