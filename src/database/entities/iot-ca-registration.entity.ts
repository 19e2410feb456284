import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** An authority's registration with AWS IoT: one per authority and IoT target (docs/iot-targets.md). */
@Entity('iot_ca_registrations')
export class IotCaRegistrationEntity {
  @PrimaryColumn({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @PrimaryColumn({ name: 'target_id', type: 'varchar', length: 64, default: 'default' }) targetId: string;
  @Index('idx_iot_ca_registrations_ca_certificate')
  @Column({ name: 'ca_certificate_id', type: 'varchar', length: 64 }) caCertificateId: string;
  @Column({ name: 'ca_certificate_arn', type: 'varchar', length: 2048 }) caCertificateArn: string;
  @Column({ name: 'certificate_mode', type: 'varchar', length: 16 }) certificateMode: string;
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'auto_registration', type: 'boolean' }) autoRegistration: boolean;
  @Column({ name: 'device_registration', type: 'varchar', length: 16 }) deviceRegistration: string;
  @Column({ name: 'policy_name', type: 'varchar', length: 128, nullable: true }) policyName: string | null;
  /** JSON {templateBody, roleArn} for JITP. */
  @Column({ name: 'provisioning_template', type: 'text', nullable: true }) provisioningTemplate: string | null;
  @Column({ name: 'registered_at', type: 'varchar', length: 32 }) registeredAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}
