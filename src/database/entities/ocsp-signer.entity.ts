import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * Delegated OCSP signing certificates (id-kp-OCSPSigning, id-pkix-ocsp-nocheck), one current per authority, with a
 * local key, so answering OCSP never calls the CA's key backend (KMS) per request. Rotated before they expire.
 */
@Entity('ocsp_signers')
@Index('idx_ocsp_signers_authority', ['authorityId', 'notAfter'])
export class OcspSignerEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  /** The local key store's reference of the signer's key. */
  @Column({ name: 'key_ref', type: 'varchar', length: 64 }) keyRef: string;
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}
