import { Injectable } from '@nestjs/common';
import { IotPolicyTemplateEntity } from '../database/entities/iot-policy-template.entity';
import { IotPolicyTemplateVersionEntity } from '../database/entities/iot-policy-template-version.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { PolicyTemplate, PolicyTemplateVersion } from './policy-template';
import { PolicyTemplateRepository } from './policy-template.repository';

@Injectable()
export class TypeOrmPolicyTemplateRepository extends PolicyTemplateRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async find(name: string): Promise<PolicyTemplate | null> {
    const [row] = await this.db.select(IotPolicyTemplateEntity, 'name = ?', [name]);
    return row ? toTemplate(row) : null;
  }

  async list(): Promise<PolicyTemplate[]> {
    return (await this.db.select(IotPolicyTemplateEntity, '1 = 1', [], ' ORDER BY name')).map(toTemplate);
  }

  async versions(name: string): Promise<PolicyTemplateVersion[]> {
    const rows = await this.db.select(IotPolicyTemplateVersionEntity, 'name = ?', [name], ' ORDER BY version DESC');
    return rows.map((row) => ({ ...row, version: Number(row.version), acceptedFindings: JSON.parse(row.acceptedFindings) as string[] }));
  }

  async insertFirst(template: PolicyTemplate, createdBy: string | null): Promise<boolean> {
    const rows = await this.db.sql(
      'INSERT INTO iot_policy_templates (name, version, document, accepted_findings, iot_status, iot_last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?) ON CONFLICT DO NOTHING RETURNING name',
      [template.name, template.version, template.document, JSON.stringify(template.acceptedFindings), template.iotStatus, template.createdAt, template.updatedAt],
    );
    if (rows.length === 0) return false;
    await this.insertVersion(template, createdBy);
    return true;
  }

  async insertNext(template: PolicyTemplate, createdBy: string | null): Promise<boolean> {
    const rows = await this.db.sql(
      "UPDATE iot_policy_templates SET version = ?, document = ?, accepted_findings = ?, iot_status = ?, iot_last_error = NULL, updated_at = ? WHERE name = ? AND version = ? RETURNING name",
      [template.version, template.document, JSON.stringify(template.acceptedFindings), template.iotStatus, template.updatedAt, template.name, template.version - 1],
    );
    if (rows.length === 0) return false;
    await this.insertVersion(template, createdBy);
    return true;
  }

  async setIotStatus(name: string, version: number, status: PolicyTemplate['iotStatus'], lastError: string | null): Promise<void> {
    // Only for the version it is about: a late answer for an older version never overwrites a newer one's status.
    await this.db.sql('UPDATE iot_policy_templates SET iot_status = ?, iot_last_error = ? WHERE name = ? AND version = ?', [status, lastError, name, version]);
  }

  private async insertVersion(template: PolicyTemplate, createdBy: string | null): Promise<void> {
    await this.db.insert(IotPolicyTemplateVersionEntity, {
      name: template.name,
      version: template.version,
      document: template.document,
      acceptedFindings: JSON.stringify(template.acceptedFindings),
      createdAt: template.updatedAt,
      createdBy,
    });
  }
}

function toTemplate(row: IotPolicyTemplateEntity): PolicyTemplate {
  return {
    ...row,
    version: Number(row.version),
    acceptedFindings: JSON.parse(row.acceptedFindings) as string[],
    iotStatus: row.iotStatus as PolicyTemplate['iotStatus'],
  };
}
