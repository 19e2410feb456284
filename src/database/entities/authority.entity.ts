import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity('authorities')
export class AuthorityEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  @Column({ type: 'varchar', length: 16 }) type: string;
  @Column({ name: 'parent_id', type: 'varchar', length: 36, nullable: true }) parentId: string | null;
  @Column({ type: 'varchar', length: 16 }) status: string;
  /** devices | claims: what its end-entity certificates are for. */
  @Column({ type: 'varchar', length: 16, default: 'devices' }) usage: string;
  @Column({ name: 'key_backend', type: 'varchar', length: 16 }) keyBackend: string;
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ name: 'key_ref', type: 'varchar', length: 2048 }) keyRef: string;
  /** One authority per key: the database refuses a second one even when two adoptions race. */
  @Index('uq_authorities_public_key', { unique: true })
  @Column({ name: 'public_key_sha256', type: 'varchar', length: 64 }) publicKeySha256: string;
  @Column({ type: 'text' }) subject: string;
  @Column({ type: 'varchar', length: 64 }) serial: string;
  @Column({ type: 'varchar', length: 64 }) fingerprint: string;
  @Column({ name: 'path_length', type: 'integer', nullable: true }) pathLength: number | null;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  /** Base64 DER; empty (as are serial, fingerprint, not_before and not_after) while the authority is pending. */
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  /** Base64 DER of the CSR of an authority under an external root (docs/external-roots.md); null for the others. */
  @Column({ name: 'csr_der', type: 'text', nullable: true }) csrDer: string | null;
  /** The uploaded external issuers up to the root, base64 DER separated by newlines, direct issuer first. */
  @Column({ name: 'external_chain', type: 'text', nullable: true }) externalChain: string | null;
  /** Last CRL number handed out; incremented in the database so replicas never reuse one. */
  @Column({ name: 'crl_number', type: 'integer', default: 0 }) crlNumber: number;
  /** Revocations recorded under this CA so far; a CRL that covers fewer is stale. Clock-independent. */
  @Column({ name: 'revocation_count', type: 'integer', default: 0 }) revocationCount: number;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'disabled_at', type: 'varchar', length: 32, nullable: true }) disabledAt: string | null;
  /** Set when the authority was rotated: the successor that issues in its place (this one is then 'retiring'). */
  @Column({ name: 'successor_id', type: 'varchar', length: 36, nullable: true }) successorId: string | null;
  @Column({ name: 'retiring_at', type: 'varchar', length: 32, nullable: true }) retiringAt: string | null;
  /** Whether it signs end-entity certificates itself (roots: only when created so; intermediates: unless created not to). */
  @Column({ name: 'allow_leaf_issuance', type: 'boolean', default: false }) allowLeafIssuance: boolean;
  /** An offline root (docs/key-ceremony.md): its key signs only inside a signing window an operator opens. */
  @Column({ type: 'boolean', default: false }) offline: boolean;
  /** End of the open signing window of an offline root (RFC 3339); null when closed. */
  @Column({ name: 'signing_enabled_until', type: 'varchar', length: 32, nullable: true }) signingEnabledUntil: string | null;
}
