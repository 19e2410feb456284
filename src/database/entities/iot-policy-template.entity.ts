import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A managed AWS IoT policy: the current version of a named template (the AWS IoT policy of the same name). */
@Entity('iot_policy_templates')
export class IotPolicyTemplateEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 }) name: string;
  @Column({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) document: string;
  /** JSON array of the lint finding codes an admin accepted for this version. */
  @Column({ name: 'accepted_findings', type: 'text' }) acceptedFindings: string;
  /** pending | synced | failed: where AWS IoT stands with this version. */
  @Column({ name: 'iot_status', type: 'varchar', length: 16 }) iotStatus: string;
  @Column({ name: 'iot_last_error', type: 'text', nullable: true }) iotLastError: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}
