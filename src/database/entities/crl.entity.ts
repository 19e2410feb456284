import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('crls')
export class CrlEntity {
  @PrimaryColumn({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @PrimaryColumn({ name: 'crl_number', type: 'integer' }) crlNumber: number;
  @Column({ name: 'this_update', type: 'varchar', length: 32 }) thisUpdate: string;
  @Column({ name: 'next_update', type: 'varchar', length: 32 }) nextUpdate: string;
  /** The authority's revocation_count when this CRL's entries were read. */
  @Column({ name: 'revocations_covered', type: 'integer' }) revocationsCovered: number;
  @Column({ type: 'text' }) der: string;
}
