import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { AuthoritiesService } from '../authorities/authorities.service';
import { ClaimsService } from '../claims/claims.service';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { Allocation, checkAllocation } from '../common/allocation';
import { IotTargetsService } from '../iot/iot-targets.service';
import { Transactions } from '../database/transactions';
import { isUniqueViolation } from '../database/errors';
import { validityDaysFor } from '../pki/issuance';
import { findProfile } from '../pki/profiles';
import { EST_LABEL_PATTERN, EstKeySpec, EstLabel, EstLabelAttestation, labelNameProblem } from './est-label';
import { EstLabelRepository } from './est-label.repository';

export interface CreateEstLabelInput {
  label: string;
  kind: 'claim' | 'authority';
  claimId?: string;
  authorityId?: string;
  profile?: string;
  validityDays?: number;
  keySpec?: EstKeySpec;
  serverKeygen?: boolean;
  attestation?: EstLabelAttestation;
  allocation?: Record<string, unknown>;
}

/** EST labels (admin): what /.well-known/est/<label>/ enrolls for. Changes are audited. */
@Injectable()
export class EstLabelsService {
  constructor(
    private readonly labels: EstLabelRepository,
    private readonly claims: ClaimsService,
    private readonly authorities: AuthoritiesService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    private readonly targets: IotTargetsService,
  ) {}

  async get(label: string): Promise<EstLabel> {
    // A name that cannot be a label is not looked up, nor echoed (it may hold anything the URL could carry).
    const found = EST_LABEL_PATTERN.test(label) ? await this.labels.find(label) : null;
    if (!found) throw Errors.estLabelNotFound(EST_LABEL_PATTERN.test(label) ? `no EST label "${label}"` : 'no such EST label: labels are 1-64 characters of a-z, 0-9 and -');
    return found;
  }

  list(): Promise<EstLabel[]> {
    return this.labels.list();
  }

  async create(ctx: RequestContext, input: CreateEstLabelInput): Promise<EstLabel> {
    const problem = labelNameProblem(input.label);
    if (problem) throw Errors.invalidEstLabel(problem);
    const label = await this.describe(input);
    try {
      await this.transactions.run(async () => {
        if (await this.labels.find(label.label)) throw Errors.estLabelExists(`the EST label "${label.label}" exists; delete it first`);
        await this.labels.insert(label);
        await this.audit.record(ctx, { action: 'est-label.created', target: { type: 'est-label', id: label.label }, details: { ...label } });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw Errors.estLabelExists(`the EST label "${label.label}" exists; delete it first`);
      throw err;
    }
    return label;
  }

  async delete(ctx: RequestContext, name: string): Promise<EstLabel> {
    return this.transactions.run(async () => {
      const label = await this.get(name);
      if (!(await this.labels.delete(name))) throw Errors.estLabelNotFound(`no EST label "${name}"`);
      await this.audit.record(ctx, { action: 'est-label.deleted', target: { type: 'est-label', id: name }, details: { ...label } });
      return label;
    });
  }

  /** The label as stored, once what it names exists and fits: a claim, or a devices authority with a public profile. */
  private async describe(input: CreateEstLabelInput): Promise<EstLabel> {
    let allocation: Allocation | null = null;
    if (input.allocation !== undefined) {
      checkAllocation(input.allocation);
      await this.targets.checkAllocationTargets(input.allocation);
      allocation = input.allocation;
    }
    const common = { label: input.label, keySpec: input.keySpec ?? 'EC_P256', serverKeygen: input.serverKeygen ?? false, attestation: input.attestation ?? 'off', allocation, createdAt: this.clock.now().toISOString() };
    if (input.kind === 'claim') {
      if (!input.claimId) throw Errors.invalidEstLabel('a claim label needs claimId');
      if (input.authorityId !== undefined || input.profile !== undefined || input.validityDays !== undefined) {
        throw Errors.invalidEstLabel('a claim label takes its authority, profile and validity from the claim: leave authorityId, profile and validityDays out');
      }
      await this.claims.get(input.claimId);
      return { ...common, kind: 'claim', claimId: input.claimId };
    }
    if (!input.authorityId || !input.profile) throw Errors.invalidEstLabel('an authority label needs authorityId and profile');
    if (input.claimId !== undefined) throw Errors.invalidEstLabel('an authority label takes no claimId');
    const profile = findProfile(input.profile);
    if (input.validityDays !== undefined) validityDaysFor(profile, input.validityDays);
    const authority = await this.authorities.get(input.authorityId);
    if (authority.usage !== profile.issuedBy) throw Errors.authorityUsageMismatch(`authority ${authority.id} does not issue ${profile.name} certificates`);
    return { ...common, kind: 'authority', authorityId: authority.id, profile: profile.name, validityDays: input.validityDays ?? null };
  }
}
