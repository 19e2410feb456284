import { Injectable } from '@nestjs/common';
import { RotationCampaignEntity } from '../database/entities/rotation-campaign.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { iotArnPrefix } from '../iot/iot-registration';
import { Campaign, CampaignMember, CampaignSelector, CampaignStatus, MemberState } from './rotation';
import { RotationRepository } from './rotation.repository';

const INSERT_ROWS = 400;

@Injectable()
export class TypeOrmRotationRepository extends RotationRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(campaign: Campaign): Promise<void> {
    await this.db.insert(RotationCampaignEntity, { ...campaign, selector: JSON.stringify(campaign.selector) });
  }

  async insertMembers(campaignId: string, members: { certificateId: string; thingName: string | null }[], at: string): Promise<void> {
    for (let i = 0; i < members.length; i += INSERT_ROWS) {
      const batch = members.slice(i, i + INSERT_ROWS);
      await this.db.sql(
        `INSERT INTO rotation_campaign_members (campaign_id, certificate_id, thing_name, state, renewed_by_id, updated_at) VALUES ${batch.map(() => "(?, ?, ?, 'pending', NULL, ?)").join(', ')}`,
        batch.flatMap((m) => [campaignId, m.certificateId, m.thingName, at]),
      );
    }
  }

  async find(id: string): Promise<Campaign | null> {
    const [row] = await this.db.select(RotationCampaignEntity, 'id = ?', [id]);
    return row ? toCampaign(row) : null;
  }

  async list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Campaign[]> {
    return (await this.db.selectByCreation(RotationCampaignEntity, after, limit)).map(toCampaign);
  }

  async selectCertificates(selector: CampaignSelector, now: string): Promise<{ certificateId: string; thingName: string | null; authorityId: string }[]> {
    const where = ["status = 'active'", 'not_after > ?', "profile <> 'claim'"];
    const params: unknown[] = [now];
    const add = (condition: string, ...values: unknown[]) => {
      where.push(condition);
      params.push(...values);
    };
    if (selector.authorityId) add('authority_id = ?', selector.authorityId);
    if (selector.claimId) add('claim_id = ?', selector.claimId);
    if (selector.profile) add('profile = ?', selector.profile);
    if (selector.expiringBefore) add('not_after < ?', new Date(selector.expiringBefore).toISOString());
    if (selector.certificateIds) add(`id IN (${selector.certificateIds.map(() => '?').join(', ')})`, ...selector.certificateIds);
    if (selector.thingNames) add(`thing_name IN (${selector.thingNames.map(() => '?').join(', ')})`, ...selector.thingNames);
    return this.db.sql(`SELECT id AS "certificateId", thing_name AS "thingName", authority_id AS "authorityId" FROM certificates WHERE ${where.join(' AND ')} ORDER BY id`, params);
  }

  async counts(id: string): Promise<Record<MemberState, number>> {
    const rows = await this.db.sql<{ state: MemberState; n: number | string }>('SELECT state, COUNT(*) AS n FROM rotation_campaign_members WHERE campaign_id = ? GROUP BY state', [id]);
    const counts: Record<MemberState, number> = { pending: 0, renewed: 0, revoked: 0 };
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  async members(id: string, state: MemberState, afterCertificateId: string | undefined, limit: number): Promise<CampaignMember[]> {
    const rows = await this.db.sql<CampaignMember>(
      `SELECT certificate_id AS "certificateId", thing_name AS "thingName", state, renewed_by_id AS "renewedById" FROM rotation_campaign_members
       WHERE campaign_id = ? AND state = ?${afterCertificateId ? ' AND certificate_id > ?' : ''} ORDER BY certificate_id LIMIT ${Number(limit)}`,
      afterCertificateId ? [id, state, afterCertificateId] : [id, state],
    );
    return rows;
  }

  async coveredByOpenCampaign(certificateId: string): Promise<boolean> {
    const rows = await this.db.sql(
      "SELECT 1 AS found FROM rotation_campaign_members m JOIN rotation_campaigns c ON c.id = m.campaign_id WHERE m.certificate_id = ? AND m.state = 'pending' AND c.status = 'open' LIMIT 1",
      [certificateId],
    );
    return rows.length > 0;
  }

  async markRenewed(certificateId: string, replacementId: string, at: string): Promise<void> {
    const campaigns = await this.db.sql<{ campaignId: string }>(
      "UPDATE rotation_campaign_members SET state = 'renewed', renewed_by_id = ?, updated_at = ? WHERE certificate_id = ? AND state = 'pending' RETURNING campaign_id AS \"campaignId\"",
      [replacementId, at, certificateId],
    );
    for (const { campaignId } of campaigns) {
      await this.db.sql(
        "UPDATE rotation_campaigns SET status = 'completed', closed_at = ? WHERE id = ? AND status = 'open' AND NOT EXISTS (SELECT 1 FROM rotation_campaign_members WHERE campaign_id = ? AND state = 'pending')",
        [at, campaignId, campaignId],
      );
    }
  }

  async markMembersRevoked(campaignId: string, certificateIds: string[], at: string): Promise<void> {
    for (let i = 0; i < certificateIds.length; i += INSERT_ROWS) {
      const batch = certificateIds.slice(i, i + INSERT_ROWS);
      await this.db.sql(`UPDATE rotation_campaign_members SET state = 'revoked', updated_at = ? WHERE campaign_id = ? AND certificate_id IN (${batch.map(() => '?').join(', ')})`, [at, campaignId, ...batch]);
    }
  }

  async closeIfOpen(id: string, status: 'cancelled' | 'closed', at: string): Promise<boolean> {
    return (await this.db.sql("UPDATE rotation_campaigns SET status = ?, closed_at = ? WHERE id = ? AND status = 'open' RETURNING id", [status, at, id])).length === 1;
  }

  async dueIds(now: string): Promise<string[]> {
    return (await this.db.sql<{ id: string }>("SELECT id FROM rotation_campaigns WHERE status = 'open' AND deadline <= ? ORDER BY deadline", [now])).map((r) => r.id);
  }

  async iotArnPrefix(): Promise<string | undefined> {
    const [row] = await this.db.sql<{ arn: string }>('SELECT ca_certificate_arn AS arn FROM iot_ca_registrations LIMIT 1');
    return row ? iotArnPrefix(row.arn) : undefined;
  }

  async repointClaims(from: string, to: string): Promise<void> {
    await this.db.sql('UPDATE claims SET device_authority_id = ? WHERE device_authority_id = ?', [to, from]);
  }

  async setIotJobId(id: string, jobId: string): Promise<void> {
    await this.db.sql('UPDATE rotation_campaigns SET iot_job_id = ? WHERE id = ?', [jobId, id]);
  }
}

function toCampaign(row: RotationCampaignEntity): Campaign {
  return {
    ...row,
    status: row.status as CampaignStatus,
    selector: JSON.parse(row.selector) as Campaign['selector'],
    onDeadline: row.onDeadline as Campaign['onDeadline'],
    notify: row.notify as Campaign['notify'],
    total: Number(row.total),
  };
}
