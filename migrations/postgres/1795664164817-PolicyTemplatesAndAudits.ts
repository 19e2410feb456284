import { MigrationInterface, QueryRunner } from 'typeorm';

export class PolicyTemplatesAndAudits1795664164817 implements MigrationInterface {
  name = 'PolicyTemplatesAndAudits1795664164817';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("CREATE TABLE \"iot_policy_templates\" (\"name\" character varying(128) NOT NULL, \"version\" integer NOT NULL, \"document\" text NOT NULL, \"accepted_findings\" text NOT NULL, \"iot_status\" character varying(16) NOT NULL, \"iot_last_error\" text, \"created_at\" character varying(32) NOT NULL, \"updated_at\" character varying(32) NOT NULL, CONSTRAINT \"PK_d1d116df0f765477429cb81217c\" PRIMARY KEY (\"name\"))");
    await queryRunner.query("CREATE TABLE \"iot_policy_template_versions\" (\"name\" character varying(128) NOT NULL, \"version\" integer NOT NULL, \"document\" text NOT NULL, \"accepted_findings\" text NOT NULL, \"created_at\" character varying(32) NOT NULL, \"created_by\" character varying(64), CONSTRAINT \"PK_178a52a57e513d0a0093d0e2f3b\" PRIMARY KEY (\"name\", \"version\"))");
    await queryRunner.query("CREATE TABLE \"fleet_audits\" (\"id\" character varying(36) NOT NULL, \"status\" character varying(16) NOT NULL, \"trigger\" character varying(16) NOT NULL, \"parameters\" text NOT NULL, \"started_at\" character varying(32) NOT NULL, \"finished_at\" character varying(32), \"summary\" text, CONSTRAINT \"PK_ad4c4f0667ce02aa94d6d0ff19d\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_fleet_audits_started\" ON \"fleet_audits\"  (\"started_at\") ");
    await queryRunner.query("CREATE TABLE \"fleet_audit_findings\" (\"id\" character varying(36) NOT NULL, \"audit_id\" character varying(36) NOT NULL, \"type\" character varying(48) NOT NULL, \"severity\" character varying(16) NOT NULL, \"resource_type\" character varying(32) NOT NULL, \"resource_id\" character varying(200) NOT NULL, \"details\" text NOT NULL, \"remediation\" character varying(48), \"remediated_at\" character varying(32), \"remediation_result\" text, CONSTRAINT \"PK_0dae34cc6766a076e9975804dc7\" PRIMARY KEY (\"id\"))");
    await queryRunner.query("CREATE INDEX \"idx_fleet_audit_findings_audit\" ON \"fleet_audit_findings\"  (\"audit_id\", \"id\") ");
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query("DROP INDEX \"public\".\"idx_fleet_audit_findings_audit\"");
    await queryRunner.query("DROP TABLE \"fleet_audit_findings\"");
    await queryRunner.query("DROP INDEX \"public\".\"idx_fleet_audits_started\"");
    await queryRunner.query("DROP TABLE \"fleet_audits\"");
    await queryRunner.query("DROP TABLE \"iot_policy_template_versions\"");
    await queryRunner.query("DROP TABLE \"iot_policy_templates\"");
  }
}
