import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Every version of every template, as it was written (AWS IoT keeps at most five; we keep them all). */
@Entity('iot_policy_template_versions')
export class IotPolicyTemplateVersionEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 }) name: string;
  @PrimaryColumn({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) document: string;
  @Column({ name: 'accepted_findings', type: 'text' }) acceptedFindings: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'created_by', type: 'varchar', length: 64, nullable: true }) createdBy: string | null;
}
