import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Single row (id = 1) holding the chain head; locked FOR UPDATE to append, which serialises the chain. */
@Entity('audit_head')
export class AuditHeadEntity {
  @PrimaryColumn({ type: 'integer' }) id: number;
  @Column({ type: 'integer' }) seq: number;
  @Column({ type: 'varchar', length: 64 }) hash: string;
}
