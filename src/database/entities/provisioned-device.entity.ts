import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One row per device a claim provisioned: the primary key makes "each serial once per claim" a database fact. */
@Entity('provisioned_devices')
export class ProvisionedDeviceEntity {
  @PrimaryColumn({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  @PrimaryColumn({ name: 'device_serial', type: 'varchar', length: 64 }) deviceSerial: string;
  @Column({ name: 'certificate_id', type: 'varchar', length: 36 }) certificateId: string;
  @Column({ name: 'public_key_sha256', type: 'varchar', length: 64 }) publicKeySha256: string;
  @Column({ name: 'provisioned_at', type: 'varchar', length: 32 }) provisionedAt: string;
}
