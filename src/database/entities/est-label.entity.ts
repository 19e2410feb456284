import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * An EST label (RFC 7030 §3.2.2): what enrollment under /.well-known/est/<label>/ means. Either a factory claim
 * (kind `claim`: enrollment is that claim's exchange) or an authority and profile (kind `authority`). The label
 * named `default` serves /.well-known/est/ without a label (docs/est.md).
 */
@Entity('est_labels')
export class EstLabelEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) label: string;
  /** claim | authority */
  @Column({ type: 'varchar', length: 16 }) kind: string;
  @Column({ name: 'claim_id', type: 'varchar', length: 36, nullable: true }) claimId: string | null;
  @Column({ name: 'authority_id', type: 'varchar', length: 36, nullable: true }) authorityId: string | null;
  @Column({ type: 'varchar', length: 32, nullable: true }) profile: string | null;
  @Column({ name: 'validity_days', type: 'integer', nullable: true }) validityDays: number | null;
  /** The key type asked for in csrattrs and made by serverkeygen: EC_P256 | EC_P384 | RSA_2048 | RSA_3072. */
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ name: 'server_keygen', type: 'boolean', default: false }) serverKeygen: boolean;
  /** off | tpm: whether enrollment under the label requires TPM attestation (docs/hardware-identity.md). */
  @Column({ type: 'varchar', length: 16, default: 'off' }) attestation: string;
  /** JSON: the IoT allocation of enrollments through this label (docs/iot-targets.md); null = the claim's or profile's. */
  @Column({ type: 'text', nullable: true }) allocation: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}
