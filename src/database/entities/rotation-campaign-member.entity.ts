import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

@Entity('rotation_campaign_members')
@Index('idx_rotation_members_state', ['campaignId', 'state', 'certificateId'])
export class RotationCampaignMemberEntity {
  @PrimaryColumn({ name: 'campaign_id', type: 'varchar', length: 36 }) campaignId: string;
  @Index('idx_rotation_members_certificate')
  @PrimaryColumn({ name: 'certificate_id', type: 'varchar', length: 36 }) certificateId: string;
  @Column({ name: 'thing_name', type: 'varchar', length: 128, nullable: true }) thingName: string | null;
  /** pending | renewed | revoked */
  @Column({ type: 'varchar', length: 16 }) state: string;
  @Column({ name: 'renewed_by_id', type: 'varchar', length: 36, nullable: true }) renewedById: string | null;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}
