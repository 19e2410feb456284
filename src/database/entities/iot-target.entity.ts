import { Column, Entity, PrimaryColumn } from 'typeorm';

/** An AWS account and region devices can be registered in (docs/iot-targets.md); `default` is implicit, never stored. */
@Entity('iot_targets')
export class IotTargetEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Column({ name: 'account_id', type: 'varchar', length: 12 }) accountId: string;
  @Column({ type: 'varchar', length: 32 }) region: string;
  @Column({ name: 'role_arn', type: 'varchar', length: 2048, nullable: true }) roleArn: string | null;
  /** A named profile of the AWS shared config/credentials files (no secret is ever stored here). */
  @Column({ type: 'varchar', length: 128, nullable: true }) profile: string | null;
  @Column({ type: 'varchar', length: 2048, nullable: true }) endpoint: string | null;
  /** JSON {operation: tps} overriding IOT_RATE_LIMITS for this target. */
  @Column({ name: 'rate_limits', type: 'text', nullable: true }) rateLimits: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}
