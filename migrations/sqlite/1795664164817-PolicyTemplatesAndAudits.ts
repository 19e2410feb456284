import { MigrationInterface, QueryRunner } from 'typeorm';

export class PolicyTemplatesAndAudits1795664164817 implements MigrationInterface {
  name = 'PolicyTemplatesAndAudits1795664164817';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"iot_policy_templates\" (\"name\" varchar(128) PRIMARY KEY NOT NULL, \"version\" integer NOT NULL, \"document\" text NOT NULL, \"accepted_findings\" text NOT NULL, \"iot_status\" varchar(16) NOT NULL, \"iot_last_error\" text, \"created_at\" varchar(32) NOT NULL, \"updated_at\" varchar(32) NOT NULL)");
    await queryRunner.query("CREATE TABLE \"iot_policy_template_versions\" (\"name\" varchar(128) NOT NULL, \"version\" integer NOT NULL, \"document\" text NOT NULL, \"accepted_findings\" text NOT NULL, \"created_at\" varchar(32) NOT NULL, \"created_by\" varchar(64), PRIMARY KEY (\"name\", \"version\"))");
    await queryRunner.query("CREATE TABLE \"fleet_audits\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"status\" varchar(16) NOT NULL, \"trigger\" varchar(16) NOT NULL, \"parameters\" text NOT NULL, \"started_at\" varchar(32) NOT NULL, \"finished_at\" varchar(32), \"summary\" text)");
    await queryRunner.query("CREATE INDEX \"idx_fleet_audits_started\" ON \"fleet_audits\" (\"started_at\") ");
    await queryRunner.query("CREATE TABLE \"fleet_audit_findings\" (\"id\" varchar(36) PRIMARY KEY NOT NULL, \"audit_id\" varchar(36) NOT NULL, \"type\" varchar(48) NOT NULL, \"severity\" varchar(16) NOT NULL, \"resource_type\" varchar(32) NOT NULL, \"resource_id\" varchar(200) NOT NULL, \"details\" text NOT NULL, \"remediation\" varchar(48), \"remediated_at\" varchar(32), \"remediation_result\" text)");
    await queryRunner.query("CREATE INDEX \"idx_fleet_audit_findings_audit\" ON \"fleet_audit_findings\" (\"audit_id\", \"id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"idx_fleet_audit_findings_audit\"");
    await queryRunner.query("DROP TABLE \"fleet_audit_findings\"");
    await queryRunner.query("DROP INDEX \"idx_fleet_audits_started\"");
    await queryRunner.query("DROP TABLE \"fleet_audits\"");
    await queryRunner.query("DROP TABLE \"iot_policy_template_versions\"");
    await queryRunner.query("DROP TABLE \"iot_policy_templates\"");
  }
}
