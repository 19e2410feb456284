import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A factory claim: who may exchange claim certificates for device certificates, how many, and how. */
@Entity('claims')
export class ClaimEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  @Column({ type: 'varchar', length: 200 }) factory: string;
  @Column({ type: 'varchar', length: 200, nullable: true }) line: string | null;
  /** active | revoked */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'claim_authority_id', type: 'varchar', length: 36 }) claimAuthorityId: string;
  @Column({ name: 'device_authority_id', type: 'varchar', length: 36 }) deviceAuthorityId: string;
  @Column({ type: 'varchar', length: 32 }) profile: string;
  @Column({ name: 'validity_days', type: 'integer', nullable: true }) validityDays: number | null;
  @Column({ name: 'max_devices', type: 'integer' }) maxDevices: number;
  /** Devices provisioned so far; raised only by a conditional UPDATE (used < max_devices) in the exchange's transaction. */
  @Column({ type: 'integer', default: 0 }) used: number;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'serial_pattern', type: 'varchar', length: 256, nullable: true }) serialPattern: string | null;
  @Column({ name: 'thing_name_template', type: 'varchar', length: 128 }) thingNameTemplate: string;
  /** JSON IotThingOptions, or null. */
  @Column({ type: 'text', nullable: true }) iot: string | null;
  /** JSON Allocation: which IoT target(s) the claim's devices go to (docs/iot-targets.md); null = the default target. */
  @Column({ type: 'text', nullable: true }) allocation: string | null;
  @Column({ name: 'allow_reprovisioning', type: 'boolean', default: false }) allowReprovisioning: boolean;
  /** off | optional | tpm: whether devices must prove a TPM-resident key (docs/hardware-identity.md). */
  @Column({ type: 'varchar', length: 16, default: 'off' }) attestation: string;
  /** Null until an allow-list is uploaded; from then on only listed serials may be exchanged. */
  @Column({ name: 'allowlist_size', type: 'integer', nullable: true }) allowlistSize: number | null;
  /** The claim's allow-list in force (claim_allowlists.id): replacing a list is one UPDATE of this pointer. */
  @Column({ name: 'allowlist_id', type: 'integer', nullable: true }) allowlistId: number | null;
  @Index('uq_claims_claim_certificate', { unique: true })
  @Column({ name: 'claim_certificate_id', type: 'varchar', length: 36 }) claimCertificateId: string;
  @Column({ name: 'last_exchange_at', type: 'varchar', length: 32, nullable: true }) lastExchangeAt: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true }) revokedAt: string | null;
}
