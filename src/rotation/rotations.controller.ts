import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured, ProblemGroups } from '../common/openapi';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/pipes';
import { CampaignDto, CampaignListDto, CampaignMemberListDto, OpenCampaignDto, RotateAuthorityDto, RotatedAuthorityDto, toCampaignDto } from './rotation.dto';
import { AuthorityRotationService } from './authority-rotation.service';
import { Authority } from '../authorities/authority';
import { AuthoritiesService } from '../authorities/authorities.service';
import { toAuthorityDto } from '../authorities/authorities.dto';
import { pemEncode } from '../pki/der';
import { RotationsService } from './rotations.service';
import { Idempotent } from '../common/idempotency';

@ApiTags('rotation')
@Controller()
export class RotationsController {
  constructor(
    private readonly rotations: RotationsService,
    private readonly authorityRotation: AuthorityRotationService,
    private readonly authorities: AuthoritiesService,
  ) {}

  @Post('v1/authorities/:id/rotate')
  @Idempotent()
  @RequirePermission(Permission.ManageAuthorities)
  @ApiTags('authorities')
  @ApiOperation({
    summary: 'Rotate an issuing CA: a successor with a new key takes over issuance',
    description:
      'The successor is an intermediate under the same parent with the same subject, usage and path length and a new key (same backend ' +
      'and key spec unless told otherwise). It is registered with AWS IoT as the predecessor is. The predecessor becomes `retiring`: it ' +
      'issues nothing new (its certificates renew under the successor, and claims issue from the successor) but keeps publishing its CRL ' +
      'and answering OCSP. With `campaign`, a rotation campaign over the predecessor’s certificates opens in the same call. Requires the admin role.',
  })
  @ApiIdParam('authority')
  @ApiCreatedResponse({ type: RotatedAuthorityDto })
  @ApiSecured()
  @ApiProblems(Errors.invalidSubject, Errors.pathLengthExceeded, ProblemGroups.issuer, ProblemGroups.keyCreation, Errors.iotAlreadyRegistered, ProblemGroups.iotCall)
  async rotateAuthority(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Body() body: RotateAuthorityDto): Promise<RotatedAuthorityDto> {
    const { predecessor, successor, campaign } = await this.authorityRotation.rotate(ctx, id, body);
    const view = async (authority: Authority) => toAuthorityDto(authority, pemEncode('CERTIFICATE', authority.certificateDer), await this.authorities.chainPem(authority));
    return {
      predecessor: await view(predecessor),
      successor: await view(successor),
      campaign: campaign ? toCampaignDto(campaign, (await this.rotations.get(campaign.id)).progress) : null,
    };
  }

  @Post('v1/rotations')
  @Idempotent()
  @RequirePermission(Permission.ManageRotations)
  @ApiOperation({
    summary: 'Open a rotation campaign over the certificates a selector matches',
    description: 'The matching set (active, unexpired; claim certificates excluded) is frozen now. Requires the operator or admin role.',
  })
  @ApiCreatedResponse({ type: CampaignDto })
  @ApiSecured()
  @ApiProblems(Errors.campaignEmpty)
  async openRotation(@Ctx() ctx: RequestContext, @Body() body: OpenCampaignDto): Promise<CampaignDto> {
    const campaign = await this.rotations.open(ctx, body);
    const { progress } = await this.rotations.get(campaign.id);
    return toCampaignDto(campaign, progress);
  }

  @Get('v1/rotations')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'List rotation campaigns, oldest first', description: 'Cursor pagination; progress is on each campaign’s own page.' })
  @ApiOkResponse({ type: CampaignListDto })
  @ApiSecured()
  async listRotations(@Query() query: PageQueryDto): Promise<CampaignListDto> {
    const page = await this.rotations.list(query.cursor, query.limit ?? 100);
    return { items: page.items.map(({ id, status, reason, deadline, total }) => ({ id, status, reason, deadline, total })), nextCursor: page.nextCursor };
  }

  @Get('v1/rotations/:id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'A campaign and its progress (total, renewed, pending, revoked, overdue)', description: 'A campaign past its deadline is settled (report or revoke) before it is shown.' })
  @ApiIdParam('rotation campaign')
  @ApiOkResponse({ type: CampaignDto })
  @ApiSecured()
  @ApiProblems(Errors.campaignNotFound)
  async getRotation(@Param('id', UuidParam) id: string): Promise<CampaignDto> {
    const { campaign, progress } = await this.rotations.get(id);
    return toCampaignDto(campaign, progress);
  }

  @Get('v1/rotations/:id/pending')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'The certificates of a campaign still waiting for renewal, paged', description: 'Ordered by certificate id; pass nextCursor as cursor.' })
  @ApiIdParam('rotation campaign')
  @ApiOkResponse({ type: CampaignMemberListDto })
  @ApiSecured()
  @ApiProblems(Errors.campaignNotFound)
  async listPendingRotation(@Param('id', UuidParam) id: string, @Query() query: PageQueryDto): Promise<CampaignMemberListDto> {
    return this.rotations.pending(id, query.cursor, query.limit ?? 100);
  }

  @Post('v1/rotations/:id/cancel')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.ManageRotations)
  @ApiOperation({ summary: 'Cancel an open campaign', description: 'Nothing is revoked; covered certificates fall back to their profile’s renewal window. Requires the operator or admin role.' })
  @ApiIdParam('rotation campaign')
  @ApiOkResponse({ type: CampaignDto })
  @ApiSecured()
  @ApiProblems(Errors.campaignNotFound, Errors.campaignNotOpen)
  async cancelRotation(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<CampaignDto> {
    await this.rotations.cancel(ctx, id);
    const { campaign, progress } = await this.rotations.get(id);
    return toCampaignDto(campaign, progress);
  }
}
