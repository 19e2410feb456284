import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('crls')
export class CrlEntity {
  @PrimaryColumn({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @PrimaryColumn({ name: 'crl_number', type: 'integer' }) crlNumber: number;
  @Column({ name: 'this_update', type: 'varchar', length: 32 }) thisUpdate: string;
  @Column({ name: 'next_update', type: 'varchar', length: 32 }) nextUpdate: string;
  /** The authority's revocation_count when this CRL's entries were read. */
  @Column({ name: 'revocations_covered', type: 'integer' }) revocationsCovered: number;
  /** The whole DER when `chunks` is 0 (CRLs stored before crl_chunks); empty otherwise. */
  @Column({ type: 'text' }) der: string;
  /** How many crl_chunks rows hold the DER (docs/architecture.md "CRLs"); 0: the DER is in `der`. */
  @Column({ type: 'integer', default: 0 }) chunks: number;
}

/**
 * A CRL's DER in pieces of at most CRL_CHUNK_BYTES (revocation/typeorm-crl.repository.ts), each written in a statement
 * of its own before the crls row that makes the CRL current: no single write of tens of MB stalls the service.
 * SQLite keeps the bytes as a BLOB in this TEXT column; PostgreSQL as base64 text, stored out of line uncompressed
 * (migration CrlChunksUncompressed: pglz cost seconds per CRL).
 */
@Entity('crl_chunks')
export class CrlChunkEntity {
  @PrimaryColumn({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @PrimaryColumn({ name: 'crl_number', type: 'integer' }) crlNumber: number;
  @PrimaryColumn({ type: 'integer' }) seq: number;
  @Column({ type: 'text' }) bytes: string;
}
