import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Audit events are append-only (docs/operations.md "Audit table"): the database itself refuses UPDATE, DELETE and
 * TRUNCATE of audit_events, whoever asks, so a bug or a leaked application credential cannot rewrite history. The
 * hash chain (GET /v1/audit/verify) still detects an edit by someone able to drop the trigger (a schema owner).
 * TypeORM does not see triggers: the drift check cannot miss them, and a later migration must not drop them.
 */
export class AppendOnlyAudit1796600000000 implements MigrationInterface {
  name = 'AppendOnlyAudit1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$`);
    await queryRunner.query('CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON "audit_events" FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()');
    await queryRunner.query('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON "audit_events" FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()');
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TRIGGER IF EXISTS audit_events_no_truncate ON "audit_events"');
    await queryRunner.query('DROP TRIGGER IF EXISTS audit_events_no_update_delete ON "audit_events"');
    await queryRunner.query('DROP FUNCTION IF EXISTS audit_events_append_only()');
  }
}
