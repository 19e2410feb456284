import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A replica-wide request rate limit bucket (station, claim; database/shared-request-limits.ts), as GCRA: the
 * bucket's theoretical arrival time in ms of the database's clock. Only PostgreSQL replicas use it.
 */
@Entity('request_limit_buckets')
export class RequestLimitBucketEntity {
  @PrimaryColumn({ type: 'varchar', length: 300 }) key: string;
  @Column({ name: 'next_slot_ms', type: 'double precision' }) nextSlotMs: number;
}
