import { Column, Entity, Index, PrimaryColumn, Unique } from 'typeorm';

@Entity('certificates')
@Unique('uq_certificates_authority_serial', ['authorityId', 'serial'])
@Index('idx_certificates_issued', ['issuedAt', 'id'])
// Search (docs/architecture.md#search-indexes): each filter has an index that also yields the newest-first order, so
// a page stops after `limit` rows; not_after rides along so the expiry test is made in the index.
@Index('idx_certificates_thing_issued', ['thingName', 'issuedAt', 'id'])
@Index('idx_certificates_status_issued', ['status', 'issuedAt', 'id', 'notAfter'])
// The expiring-soon gauge, the CRL's entries, and the bounds of an expiry search: index-only on PostgreSQL.
@Index('idx_certificates_status_not_after', ['status', 'notAfter', 'authorityId'])
// Made by the migrations (an expression index TypeORM cannot describe): (status, 10-day bucket of not_after,
// issued_at, id, not_after, authority_id), which the expiry search walks bucket by bucket.
@Index('idx_certificates_expiry_buckets', { synchronize: false })
@Index('idx_certificates_revoked_key', ['publicKeySha256', 'revocationReason'])
export class CertificateEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Index('idx_certificates_authority')
  @Column({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @Index('idx_certificates_serial')
  @Column({ type: 'varchar', length: 64 }) serial: string;
  @Index('uq_certificates_fingerprint', { unique: true })
  @Column({ type: 'varchar', length: 64 }) fingerprint: string;
  @Column({ type: 'varchar', length: 32 }) profile: string;
  @Column({ type: 'text' }) subject: string;
  @Column({ name: 'thing_name', type: 'varchar', length: 128, nullable: true }) thingName: string | null;
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'issued_at', type: 'varchar', length: 32 }) issuedAt: string;
  @Column({ name: 'public_key_sha256', type: 'varchar', length: 64 }) publicKeySha256: string;
  @Column({ name: 'key_description', type: 'varchar', length: 16 }) keyDescription: string;
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  @Column({ type: 'text', nullable: true }) metadata: string | null;
  @Column({ name: 'validity_clamped', type: 'boolean', default: false }) validityClamped: boolean;
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true }) revokedAt: string | null;
  @Column({ name: 'revocation_reason', type: 'varchar', length: 32, nullable: true }) revocationReason: string | null;
  /** Progress of the certificate in AWS IoT: none | pending | registered | active | inactive | revoked | failed. */
  @Column({ name: 'iot_status', type: 'varchar', length: 16, default: 'none' }) iotStatus: string;
  @Column({ name: 'iot_last_error', type: 'text', nullable: true }) iotLastError: string | null;
  /** JSON IotThingOptions: AWS IoT settings for this certificate that override the CA registration's. */
  @Column({ name: 'iot_thing', type: 'text', nullable: true }) iotThing: string | null;
  /** The IoT target (docs/iot-targets.md) the certificate is registered in; null = the default target. */
  @Column({ name: 'iot_target_id', type: 'varchar', length: 64, nullable: true }) iotTargetId: string | null;
  @Index('idx_certificates_claim')
  @Column({ name: 'claim_id', type: 'varchar', length: 36, nullable: true }) claimId: string | null;
  /** Lineage: the certificate this one renewed, and the one that renewed it (which makes this one superseded). */
  @Column({ name: 'replaces_id', type: 'varchar', length: 36, nullable: true }) replacesId: string | null;
  @Column({ name: 'replaced_by_id', type: 'varchar', length: 36, nullable: true }) replacedById: string | null;
  @Column({ name: 'superseded_at', type: 'varchar', length: 32, nullable: true }) supersededAt: string | null;
  /** JSON HardwareAttestation: what a TPM proved about the key at enrollment (docs/hardware-identity.md), or null. */
  @Column({ name: 'hardware_attestation', type: 'text', nullable: true }) hardwareAttestation: string | null;
  /**
   * 'issued' (by one of our authorities) or 'imported' (a pre-provisioned identity from a secure-element manifest,
   * docs/secure-elements.md): an imported certificate's authority_id names its secure-element signer, never one of
   * our authorities, so CRLs and OCSP (which read by authority) never answer for it.
   */
  @Column({ type: 'varchar', length: 16, default: 'issued' }) origin: string;
  /** Imported certificates: the chain the vendor gave (x5c[1…]), base64 DERs joined by ','. Null for ours. */
  @Column({ name: 'imported_chain', type: 'text', nullable: true }) importedChain: string | null;
}
