import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Who runs a piece of periodic work (database/typeorm-leases.ts), until when (ms since the epoch, database clock). */
@Entity('work_leases')
export class WorkLeaseEntity {
  @PrimaryColumn({ type: 'varchar', length: 100 }) name: string;
  @Column({ type: 'varchar', length: 200 }) holder: string;
  @Column({ name: 'expires_at_ms', type: 'double precision' }) expiresAtMs: number;
}
