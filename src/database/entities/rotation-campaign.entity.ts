import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A rotation campaign: the set of certificates to renew by a deadline, frozen when it is opened. */
@Entity('rotation_campaigns')
export class RotationCampaignEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  /** open | completed | cancelled | closed (deadline passed and handled) */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ type: 'varchar', length: 500 }) reason: string;
  /** JSON of the selector it was opened with. */
  @Column({ type: 'text' }) selector: string;
  @Column({ type: 'varchar', length: 32 }) deadline: string;
  /** report | revoke */
  @Column({ name: 'on_deadline', type: 'varchar', length: 16 }) onDeadline: string;
  /** iot-job, or null */
  @Column({ type: 'varchar', length: 16, nullable: true }) notify: string | null;
  @Column({ type: 'integer' }) total: number;
  @Column({ name: 'iot_job_id', type: 'varchar', length: 64, nullable: true }) iotJobId: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'closed_at', type: 'varchar', length: 32, nullable: true }) closedAt: string | null;
}
