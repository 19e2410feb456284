import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** Token ids (JWT jti) already used, kept until the token would have expired: each token works once. */
@Entity('used_token_ids')
export class UsedTokenIdEntity {
  /** SHA-256 of the signing certificate's fingerprint and the jti, hex (jti values are the caller's text). */
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Index('idx_used_token_ids_expires')
  @Column({ name: 'expires_at', type: 'varchar', length: 32 }) expiresAt: string;
}
