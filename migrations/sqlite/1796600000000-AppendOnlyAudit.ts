import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Audit events are append-only (docs/operations.md "Audit table"): SQLite refuses UPDATE and DELETE of audit_events.
 * TypeORM does not see triggers, and it rebuilds a SQLite table (DROP + CREATE) to alter it: a later migration that
 * changes audit_events must create these triggers again.
 */
export class AppendOnlyAudit1796600000000 implements MigrationInterface {
  name = 'AppendOnlyAudit1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TRIGGER "audit_events_no_update" BEFORE UPDATE ON "audit_events" BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END`);
    await queryRunner.query(`CREATE TRIGGER "audit_events_no_delete" BEFORE DELETE ON "audit_events" BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TRIGGER IF EXISTS "audit_events_no_delete"');
    await queryRunner.query('DROP TRIGGER IF EXISTS "audit_events_no_update"');
  }
}
