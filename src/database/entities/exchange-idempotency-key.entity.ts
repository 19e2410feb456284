import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Idempotency-Key of an exchange: the request's hash and the certificate it produced. */
@Entity('exchange_idempotency_keys')
export class ExchangeIdempotencyKeyEntity {
  @PrimaryColumn({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  @PrimaryColumn({ name: 'idempotency_key', type: 'varchar', length: 128 }) idempotencyKey: string;
  @Column({ name: 'request_sha256', type: 'varchar', length: 64 }) requestSha256: string;
  @Column({ name: 'certificate_id', type: 'varchar', length: 36 }) certificateId: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}
