import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One upload of a claim's allow-list. Its serials are written while it is `staging` (invisible to the exchange),
 * it becomes `active` when the claim's pointer is swapped to it, and `retired` when replaced or abandoned; a
 * retired list's serials are deleted in the background of later uploads, then the list itself.
 */
@Entity('claim_allowlists')
export class ClaimAllowlistEntity {
  /** An integer, not a UUID: it prefixes every serial's key, a million times for a large list. */
  @PrimaryGeneratedColumn('increment') id: number;
  @Column({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  /** staging | active | retired */
  @Index('idx_claim_allowlists_status')
  @Column({ type: 'varchar', length: 16 }) status: string;
  /** Distinct serials written so far. */
  @Column({ type: 'integer', default: 0 }) size: number;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  /** Touched by every chunk of a staging upload: a staging list untouched for long belongs to an upload that died. */
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}
