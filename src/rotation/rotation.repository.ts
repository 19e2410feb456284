import { RenewalCampaigns } from '../certificates/renewal-campaigns.port';
import { Campaign, CampaignMember, CampaignSelector, MemberState } from './rotation';

/** Port: rotation campaigns and their frozen member sets; also what a renewal asks of them (certificates/). */
export abstract class RotationRepository implements RenewalCampaigns {
  abstract insert(campaign: Campaign): Promise<void>;
  abstract insertMembers(campaignId: string, members: { certificateId: string; thingName: string | null }[], at: string): Promise<void>;
  abstract find(id: string): Promise<Campaign | null>;
  abstract list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Campaign[]>;
  /** Active, unexpired certificates (not claim certificates) matching the selector. */
  abstract selectCertificates(selector: CampaignSelector, now: string): Promise<{ certificateId: string; thingName: string | null; authorityId: string }[]>;
  abstract counts(id: string): Promise<Record<MemberState, number>>;
  abstract members(id: string, state: MemberState, afterCertificateId: string | undefined, limit: number): Promise<CampaignMember[]>;
  abstract coveredByOpenCampaign(certificateId: string): Promise<boolean>;
  /** Marks the certificate renewed in every campaign that waits for it; completes campaigns left with nothing pending. */
  abstract markRenewed(certificateId: string, replacementId: string, at: string): Promise<void>;
  abstract markMembersRevoked(campaignId: string, certificateIds: string[], at: string): Promise<void>;
  /** Moves an open campaign to `status`; false when it was not open (another replica got there first). */
  abstract closeIfOpen(id: string, status: 'cancelled' | 'closed', at: string): Promise<boolean>;
  abstract dueIds(now: string): Promise<string[]>;
  abstract setIotJobId(id: string, jobId: string): Promise<void>;
  /** Claims that issued from `from` issue from `to` (CA rotation). */
  abstract repointClaims(from: string, to: string): Promise<void>;
  /** `arn:<partition>:iot:<region>:<account>:` of the AWS IoT account our CAs are registered in, if any is. */
  abstract iotArnPrefix(): Promise<string | undefined>;
}
