import { Injectable, Logger } from '@nestjs/common';
import { RequestContext } from '../common/actor';
import { Authority } from '../authorities/authority';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Errors } from '../common/errors';
import { Transactions } from '../database/transactions';
import { IotRegistrationsService } from '../iot/iot-registrations.service';
import { KeyBackend, KeySpec } from '../keys/key-spec';
import { Campaign } from './rotation';
import { RotationRepository } from './rotation.repository';
import { OpenCampaignInput, RotationsService } from './rotations.service';

export interface RotateAuthorityInput {
  /** Default: the predecessor's. */
  keyBackend?: KeyBackend;
  keySpec?: KeySpec;
  kmsKeyId?: string;
  validityDays?: number;
  name?: string;
  /** Open a rotation campaign over the predecessor's certificates in the same call. */
  campaign?: Omit<OpenCampaignInput, 'selector'>;
}

/**
 * Issuing-CA rotation: a successor with a new key under the same parent, the same subject, usage and path length;
 * registered with AWS IoT as its predecessor is; then the predecessor retires (no new certificates, still CRL and
 * OCSP) and claims that issued from it issue from the successor. Optionally opens a campaign for what it issued.
 */
@Injectable()
export class AuthorityRotationService {
  private readonly logger = new Logger('AuthorityRotation');

  constructor(
    private readonly authorities: AuthoritiesService,
    private readonly iotRegistrations: IotRegistrationsService,
    private readonly rotations: RotationsService,
    private readonly repository: RotationRepository,
    private readonly transactions: Transactions,
  ) {}

  async rotate(ctx: RequestContext, id: string, input: RotateAuthorityInput): Promise<{ predecessor: Authority; successor: Authority; campaign: Campaign | null }> {
    const old = await this.authorities.get(id);
    if (old.type !== 'intermediate' || !old.parentId) throw Errors.validation('only intermediate authorities rotate (a new root is a new trust anchor: create it instead)');
    if (old.status !== 'active') throw Errors.authorityNotActive(`authority ${id} is ${old.status} and cannot be rotated`);
    if (input.campaign && new Date(input.campaign.deadline) <= new Date()) throw Errors.validation('campaign.deadline must be in the future');
    const registration = await this.iotRegistrations.find(id);

    const successor = await this.authorities.create(ctx, {
      name: input.name ?? old.name,
      type: 'intermediate',
      parentId: old.parentId,
      usage: old.usage,
      keyBackend: input.keyBackend ?? old.keyBackend,
      keySpec: input.kmsKeyId !== undefined ? input.keySpec : (input.keySpec ?? old.keySpec),
      kmsKeyId: input.kmsKeyId,
      subject: this.authorities.subjectOf(old),
      validityDays: input.validityDays,
      pathLength: old.pathLength ?? undefined,
      allowLeafIssuance: old.allowLeafIssuance,
    });
    if (registration && registration.status === 'ACTIVE') {
      try {
        await this.iotRegistrations.register(ctx, successor.id, {
          certificateMode: registration.certificateMode,
          autoRegistration: registration.autoRegistration,
          setAsActive: true,
          deviceRegistration: registration.deviceRegistration,
          policyName: registration.policyName ?? undefined,
          provisioningTemplate: registration.provisioningTemplate ?? undefined,
        });
      } catch (err) {
        // The predecessor keeps issuing; the unregistered successor must not be used by mistake.
        await this.authorities.disable(ctx, successor.id).catch((cleanup: unknown) => this.logger.error(`could not disable unregistered successor ${successor.id}: ${(cleanup as Error).message}`));
        throw err;
      }
    }
    await this.transactions.run(async () => {
      await this.authorities.retire(ctx, id, successor.id);
      await this.repository.repointClaims(id, successor.id);
    });
    // The rotation stands whatever happens to the campaign (e.g. no certificate to renew); it can be opened by hand.
    const campaign = input.campaign
      ? await this.rotations.open(ctx, { ...input.campaign, selector: { authorityId: id } }).catch((err: unknown) => {
          this.logger.warn(`authority ${id} rotated, but its campaign was not opened: ${(err as Error).message}`);
          return null;
        })
      : null;
    return { predecessor: await this.authorities.get(id), successor: await this.authorities.get(successor.id), campaign };
  }
}
