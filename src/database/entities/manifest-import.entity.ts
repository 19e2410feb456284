import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A secure-element manifest import (docs/secure-elements.md): a resumable job over an uploaded manifest kept in the data
 * directory until it is done. `next_index` is the first entry not yet committed: a resumed import starts there.
 */
@Entity('manifest_imports')
@Index('idx_manifest_imports_status', ['status', 'createdAt'])
export class ManifestImportEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  /** SHA-256 over the signer certificate and the manifest bytes: the same upload again is the same import. */
  @Index('uq_manifest_imports_content', { unique: true })
  @Column({ name: 'content_sha256', type: 'varchar', length: 64 }) contentSha256: string;
  @Column({ name: 'signer_fingerprint', type: 'varchar', length: 64 }) signerFingerprint: string;
  @Column({ name: 'signer_der', type: 'text' }) signerDer: string;
  @Column({ name: 'signer_subject', type: 'text' }) signerSubject: string;
  /** without-ca | none */
  @Column({ type: 'varchar', length: 16 }) registration: string;
  @Column({ name: 'iot_target_id', type: 'varchar', length: 64, nullable: true }) iotTargetId: string | null;
  @Column({ name: 'policy_name', type: 'varchar', length: 128, nullable: true }) policyName: string | null;
  /** The manifest's file name under the data directory's manifests/ folder. */
  @Column({ name: 'file_name', type: 'varchar', length: 128 }) fileName: string;
  @Column({ name: 'size_bytes', type: 'integer' }) sizeBytes: number;
  /** queued | running | done | failed */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ type: 'integer' }) total: number;
  @Column({ name: 'next_index', type: 'integer', default: 0 }) nextIndex: number;
  @Column({ type: 'integer', default: 0 }) imported: number;
  @Column({ type: 'integer', default: 0 }) skipped: number;
  @Column({ type: 'integer', default: 0 }) failed: number;
  /** JSON: the first failures, [{index, uniqueId, code, message}]. */
  @Column({ type: 'text' }) failures: string;
  @Column({ type: 'text', nullable: true }) error: string | null;
  @Column({ name: 'created_by', type: 'varchar', length: 128 }) createdBy: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
  @Column({ name: 'finished_at', type: 'varchar', length: 32, nullable: true }) finishedAt: string | null;
}
