import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A replica-wide pacing budget (database/shared-pacing.ts): the budget's theoretical arrival time (GCRA), in ms of
 * the database's clock: the next call slot not yet handed out. Only PostgreSQL replicas use it.
 */
@Entity('pacing_budgets')
export class PacingBudgetEntity {
  @PrimaryColumn({ type: 'varchar', length: 200 }) key: string;
  @Column({ name: 'next_slot_ms', type: 'double precision' }) nextSlotMs: number;
}
