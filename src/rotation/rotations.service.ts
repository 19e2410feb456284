import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext, SYSTEM_CONTEXT } from '../common/actor';
import { CertificatesService } from '../certificates/certificates.service';
import { Clock } from '../common/clock';
import { creationPage, decodeCursor, encodeCursor } from '../common/cursor';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { IotRegistry } from '../iot/iot-registry';
import { OutboxService } from '../jobs/outbox.service';
import { RevocationReason } from '../pki/crl';
import { Campaign, CampaignMember, CampaignProgress, CampaignSelector } from './rotation';
import { RotationRepository } from './rotation.repository';

export interface OpenCampaignInput {
  selector: CampaignSelector;
  reason: string;
  deadline: string;
  onDeadline: 'report' | 'revoke';
  /** The reason given to certificates revoked at the deadline (onDeadline revoke); default superseded. */
  revocationReason?: RevocationReason;
  notify?: 'iot-job';
}

const IOT_JOB = 'iot.rotation-job';
/** Things per AWS IoT job (CreateJob takes at most 100 targets). */
const JOB_TARGETS = 100;

/**
 * Rotation campaigns: the certificates a selector matches are frozen when the campaign opens; each renewal
 * (POST /v1/certificates/renew) ticks one off; at the deadline the rest are reported or revoked. With
 * `notify: iot-job`, AWS IoT jobs (through the outbox) tell the targeted things to renew.
 */
@Injectable()
export class RotationsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Rotations');
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly repository: RotationRepository,
    private readonly certificates: CertificatesService,
    private readonly outbox: OutboxService,
    private readonly iot: IotRegistry,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.outbox.register(IOT_JOB, { run: (p) => this.createIotJobs(String(p.campaignId)) });
    this.sweepTimer = setInterval(() => void this.sweep(), this.config.rotation.sweepSeconds * 1000);
    this.sweepTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweepTimer);
  }

  async open(ctx: RequestContext, input: OpenCampaignInput): Promise<Campaign> {
    const now = this.clock.now();
    const deadline = new Date(input.deadline);
    if (deadline <= now) throw Errors.validation('deadline must be in the future');
    const { selector } = input;
    if (!selector.authorityId && !selector.claimId && !selector.profile && !selector.expiringBefore && !selector.thingNames?.length && !selector.certificateIds?.length) {
      throw Errors.validation('the selector needs at least one criterion (a campaign over every certificate is not opened by accident)');
    }
    const members = await this.repository.selectCertificates(selector, now.toISOString());
    if (members.length === 0) throw Errors.campaignEmpty('no active certificate matches the selector');
    const campaign: Campaign = {
      id: randomUUID(),
      status: 'open',
      reason: input.reason,
      selector: { ...selector, ...(input.revocationReason ? { revocationReason: input.revocationReason } : {}) },
      deadline: deadline.toISOString(),
      onDeadline: input.onDeadline,
      notify: input.notify ?? null,
      total: members.length,
      iotJobId: null,
      createdAt: now.toISOString(),
      closedAt: null,
    };
    await this.transactions.run(async () => {
      await this.repository.insert(campaign);
      await this.repository.insertMembers(campaign.id, members, campaign.createdAt);
      if (campaign.notify === 'iot-job') {
        await this.outbox.enqueue({ kind: IOT_JOB, payload: { campaignId: campaign.id }, dedupeKey: `${IOT_JOB}:${campaign.id}`, target: { type: 'rotation', id: campaign.id } });
      }
      await this.audit.record(ctx, {
        action: 'rotation.opened',
        target: { type: 'rotation', id: campaign.id },
        details: { reason: campaign.reason, selector: campaign.selector, deadline: campaign.deadline, onDeadline: campaign.onDeadline, notify: campaign.notify, total: campaign.total },
      });
    });
    return campaign;
  }

  /** The campaign and its progress; a campaign past its deadline is settled first (not only by the background sweep). */
  async get(id: string): Promise<{ campaign: Campaign; progress: CampaignProgress }> {
    let campaign = await this.find(id);
    if (campaign.status === 'open' && new Date(campaign.deadline) <= this.clock.now()) {
      await this.settleDeadline(id);
      campaign = await this.find(id);
    }
    const counts = await this.repository.counts(id);
    const overdue = campaign.status !== 'cancelled' && new Date(campaign.deadline) <= this.clock.now() ? counts.pending : 0;
    return { campaign, progress: { total: campaign.total, renewed: counts.renewed, pending: counts.pending, revoked: counts.revoked, overdue } };
  }

  async list(cursor: string | undefined, limit: number): Promise<{ items: Campaign[]; nextCursor: string | null }> {
    return creationPage(cursor, limit, (after, n) => this.repository.list(after, n));
  }

  async pending(id: string, cursor: string | undefined, limit: number): Promise<{ items: CampaignMember[]; nextCursor: string | null }> {
    await this.find(id);
    const after = cursor ? decodeCursor<{ certificateId: string }>(cursor, { certificateId: 'string' }).certificateId : undefined;
    const rows = await this.repository.members(id, 'pending', after, limit + 1);
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? encodeCursor({ certificateId: items[items.length - 1].certificateId }) : null };
  }

  async cancel(ctx: RequestContext, id: string): Promise<Campaign> {
    await this.find(id);
    await this.transactions.run(async () => {
      if (!(await this.repository.closeIfOpen(id, 'cancelled', this.clock.now().toISOString()))) throw Errors.campaignNotOpen(`campaign ${id} is not open`);
      await this.audit.record(ctx, { action: 'rotation.cancelled', target: { type: 'rotation', id } });
    });
    return this.find(id);
  }

  /** Settles every open campaign whose deadline has passed. */
  async sweep(): Promise<void> {
    try {
      for (const id of await this.repository.dueIds(this.clock.now().toISOString())) await this.settleDeadline(id);
    } catch (err) {
      this.logger.error(`rotation deadline sweep failed: ${(err as Error).message}`);
    }
  }

  /**
   * At the deadline: `report` closes the campaign and leaves the pending certificates as they are; `revoke`
   * revokes them, in the same transaction as the close (one replica wins it), then republishes the CRLs.
   */
  private async settleDeadline(id: string): Promise<void> {
    const campaign = await this.find(id);
    const at = this.clock.now().toISOString();
    const authorities = new Set<string>();
    await this.transactions.run(async () => {
      if (!(await this.repository.closeIfOpen(id, 'closed', at))) return;
      const revoked: string[] = [];
      if (campaign.onDeadline === 'revoke') {
        const reason = campaign.selector.revocationReason ?? 'superseded';
        for (let page = await this.repository.members(id, 'pending', undefined, 1000); page.length > 0; page = await this.repository.members(id, 'pending', page[page.length - 1].certificateId, 1000)) {
          for (const member of page) {
            const record = await this.certificates.revokeInTransaction(SYSTEM_CONTEXT, member.certificateId, reason, { rotationId: id });
            if (record) authorities.add(record.authorityId);
            revoked.push(member.certificateId);
          }
        }
        await this.repository.markMembersRevoked(id, revoked, at);
      }
      await this.audit.record(SYSTEM_CONTEXT, { action: 'rotation.deadline-passed', target: { type: 'rotation', id }, details: { onDeadline: campaign.onDeadline, revoked: revoked.length } });
    });
    for (const authorityId of authorities) await this.certificates.refreshCrl(authorityId);
  }

  /** One AWS IoT job per hundred pending things, each telling its things to renew by the deadline. */
  private async createIotJobs(campaignId: string): Promise<void> {
    const campaign = await this.find(campaignId);
    const document = {
      operation: 'fleet-pki.renew-certificate',
      renewUrl: `${this.config.publicBaseUrl}/v1/certificates/renew`,
      campaignId,
      reason: campaign.reason,
      deadline: campaign.deadline,
    };
    const things: string[] = [];
    for (let page = await this.repository.members(campaignId, 'pending', undefined, 1000); page.length > 0; page = await this.repository.members(campaignId, 'pending', page[page.length - 1].certificateId, 1000)) {
      for (const member of page) if (member.thingName) things.push(member.thingName);
    }
    // Thing ARNs are built from the account our CAs are registered in (one DescribeThing per thing would take
    // minutes at AWS's rate limits); without a registration each is looked up.
    const prefix = await this.repository.iotArnPrefix();
    const targets: string[] = [];
    for (const thing of new Set(things)) {
      const arn = prefix ? `${prefix}thing/${thing}` : await this.iot.thingArn(thing);
      if (arn) targets.push(arn);
    }
    let first: string | null = null;
    for (let i = 0, n = 1; i < targets.length; i += JOB_TARGETS, n++) {
      // Deterministic ids: a rerun of this job finds the jobs it already made.
      const jobId = `fleet-pki-rotation-${campaignId}-${n}`;
      await this.iot.createJob({ jobId, targets: targets.slice(i, i + JOB_TARGETS), document, description: `Fleet PKI rotation: ${campaign.reason}`.slice(0, 2028) });
      first ??= jobId;
    }
    if (first) await this.repository.setIotJobId(campaignId, first);
  }

  private async find(id: string): Promise<Campaign> {
    const campaign = await this.repository.find(id);
    if (!campaign) throw Errors.campaignNotFound(`no rotation campaign with id ${id}`);
    return campaign;
  }
}
