import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity('api_keys')
export class ApiKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  @Column({ type: 'varchar', length: 16 }) role: string;
  @Index('uq_api_keys_prefix', { unique: true })
  @Column({ type: 'varchar', length: 32 }) prefix: string;
  /** SHA-256 of the whole key, hex. The key is 256 random bits, so a fast hash is enough. */
  @Column({ name: 'secret_hash', type: 'varchar', length: 64 }) secretHash: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'created_by', type: 'varchar', length: 64, nullable: true }) createdBy: string | null;
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true }) revokedAt: string | null;
}
