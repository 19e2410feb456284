import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A TPM manufacturer's EK-issuing CA that operators allow (docs/hardware-identity.md): EK chains must end in one. */
@Entity('tpm_manufacturer_roots')
export class TpmManufacturerRootEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  @Index('uq_tpm_manufacturer_roots_fingerprint', { unique: true })
  @Column({ type: 'varchar', length: 64 }) fingerprint: string;
  @Column({ type: 'text' }) subject: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  /** Base64 DER. */
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}
