import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../common/actor';
import { Ctx, Public, RequirePermission } from '../common/access.decorators';
import { CertificateIdentity } from '../auth/certificate-authenticator';
import { Permission } from '../common/roles';
import { CertificateDto, toCertificateDto } from '../certificates/certificates.dto';
import { CertificatesService } from '../certificates/certificates.service';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured, CERTIFICATE_JWT_SCHEME, ProblemGroups } from '../common/openapi';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/pipes';
import { CampaignDto, CampaignListDto, CampaignMemberListDto, OpenCampaignDto, RenewDto, RotateAuthorityDto, RotatedAuthorityDto, toCampaignDto } from './rotation.dto';
import { AuthorityRotationService } from './authority-rotation.service';
import { Authority } from '../authorities/authority';
import { AuthoritiesService } from '../authorities/authorities.service';
import { toAuthorityDto } from '../authorities/authorities.dto';
import { pemEncode } from '../pki/der';
import { Device, DeviceGuard } from './device.guard';
import { RenewalService } from './renewal.service';
import { RotationsService } from './rotations.service';

@ApiTags('rotation')
@Controller()
export class RotationsController {
  constructor(
    private readonly rotations: RotationsService,
    private readonly renewal: RenewalService,
    private readonly certificates: CertificatesService,
    private readonly clock: Clock,
    private readonly authorityRotation: AuthorityRotationService,
    private readonly authorities: AuthoritiesService,
  ) {}

  @Post('v1/certificates/renew')
  @Public()
  @UseGuards(DeviceGuard)
  @HttpCode(201)
  @ApiTags('certificates')
  @ApiOperation({
    summary: 'A device renews its own certificate (authenticated by that certificate)',
    description:
      'Mutual TLS with the current certificate, or `Authorization: Bearer <JWT>` signed with its key, the certificate in `x5c`, ' +
      '`aud` = this URL (PUBLIC_BASE_URL + /v1/certificates/renew), `exp` ≤ 5 minutes ahead, single-use `jti`. Allowed in the profile’s ' +
      'renewal window (the last third of the lifetime) or while a rotation campaign covers the certificate; a new key is required ' +
      '(SAME_KEY_NOT_ALLOWED) unless the operator allows the same key for the profile; an expired certificate cannot renew ' +
      '(CERTIFICATE_EXPIRED) unless the operator allows some days after expiry for the profile; a revoked (CERTIFICATE_REVOKED) or already ' +
      'renewed (CERTIFICATE_SUPERSEDED) certificate cannot renew. The new certificate keeps the thing name and claim, and `replaces` the old one, which becomes ' +
      '`superseded`, stays valid for RENEWAL_GRACE_SECONDS and then leaves AWS IoT (INACTIVE, detached) through the outbox. A certificate ' +
      'from a retiring CA renews under its successor. The device is authenticated before the body is read: without valid ' +
      'credentials the answer is a 401, whatever the body (even one that is not JSON or is too large).',
  })
  @ApiBearerAuth(CERTIFICATE_JWT_SCHEME)
  @ApiCreatedResponse({ type: CertificateDto, description: 'The new certificate' })
  @ApiProblems(
    ProblemGroups.certificateAuth,
    [Errors.certificateUntrusted, Errors.notADeviceCertificate],
    [Errors.renewalNotAllowed, Errors.certificateRevoked, Errors.certificateSuperseded, Errors.certificateExpired, Errors.renewalNotYetAllowed],
    Errors.sameKeyNotAllowed,
    ProblemGroups.csr,
    ProblemGroups.issuance,
  )
  async renewCertificate(@Device() identity: CertificateIdentity, @Body() body: RenewDto): Promise<CertificateDto> {
    const record = await this.renewal.renew(identity, body.csr);
    return toCertificateDto(record, await this.certificates.chainPem(record.authorityId), this.clock.now());
  }

  @Post('v1/authorities/:id/rotate')
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
