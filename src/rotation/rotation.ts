import { RevocationReason } from '../pki/crl';

export type CampaignStatus = 'open' | 'completed' | 'cancelled' | 'closed';
export type MemberState = 'pending' | 'renewed' | 'revoked';

/** Which certificates a campaign covers; criteria combine with AND. Only active, unexpired certificates are taken. */
export interface CampaignSelector {
  authorityId?: string;
  claimId?: string;
  profile?: string;
  expiringBefore?: string;
  thingNames?: string[];
  /** Exactly these certificates (e.g. a fleet audit's expiring ones). */
  certificateIds?: string[];
}

export interface Campaign {
  id: string;
  status: CampaignStatus;
  reason: string;
  selector: CampaignSelector & { revocationReason?: RevocationReason };
  deadline: string;
  onDeadline: 'report' | 'revoke';
  notify: 'iot-job' | null;
  total: number;
  iotJobId: string | null;
  createdAt: string;
  closedAt: string | null;
}

export interface CampaignProgress {
  total: number;
  renewed: number;
  pending: number;
  revoked: number;
  /** Pending after the deadline. */
  overdue: number;
}

export interface CampaignMember {
  certificateId: string;
  thingName: string | null;
  state: MemberState;
  renewedById: string | null;
}
