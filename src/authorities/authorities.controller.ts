import { Body, Controller, Get, Header, HttpCode, Param, Post, Query, StreamableFile } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../auth/actor';
import { Ctx, Public, RequirePermission } from '../auth/auth.decorators';
import { Permission } from '../auth/roles';
import { ApiIdParam, ApiProblems, ApiSecured } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { pemEncode } from '../pki/der';
import { AuthoritiesService } from './authorities.service';
import { PageQueryDto } from '../common/page-query.dto';
import { AuthorityDto, AuthorityListDto, CreateAuthorityDto, toAuthorityDto } from './authorities.dto';
import { Authority } from './authority';

@ApiTags('authorities')
@Controller('v1/authorities')
export class AuthoritiesController {
  constructor(private readonly authorities: AuthoritiesService) {}

  @Post()
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Create a self-signed root or an intermediate signed by a parent CA of this service',
    description:
      'Generates the CA key in the chosen backend and signs the CA certificate. An intermediate needs an active, ' +
      'unexpired parent (`parentId`); its validity is clamped to the parent’s (`validityClamped`) and its path length ' +
      'must fit under the parent’s. Requires the admin role.',
  })
  @ApiCreatedResponse({ type: AuthorityDto, description: 'The new authority, with its certificate and chain' })
  @ApiSecured()
  @ApiProblems(400, 404, 409, 413, 415, 422, 503)
  async createAuthority(@Ctx() ctx: RequestContext, @Body() body: CreateAuthorityDto): Promise<AuthorityDto> {
    const created = await this.authorities.create(ctx, { ...body, keyBackend: body.keyBackend ?? 'local' });
    return { ...(await this.view(created)), validityClamped: created.validityClamped };
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'List authorities, oldest first',
    description: 'Cursor pagination: pass `nextCursor` from a page as `cursor` to get the next one; it is null on the last page.',
  })
  @ApiOkResponse({ type: AuthorityListDto, description: 'A page of authorities' })
  @ApiSecured()
  @ApiProblems(400)
  async listAuthorities(@Query() query: PageQueryDto): Promise<AuthorityListDto> {
    const page = await this.authorities.list(query.cursor, query.limit ?? 100);
    return { items: await Promise.all(page.items.map((a) => this.view(a))), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'Authority detail with its certificate and chain',
    description: 'The CA certificate as PEM and its chain up to the root (this certificate first), ready to register with AWS IoT.',
  })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: AuthorityDto, description: 'The authority' })
  @ApiSecured()
  @ApiProblems(400, 404)
  async getAuthority(@Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.get(id));
  }

  @Post(':id/disable')
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Disable an authority: it issues nothing more, and still publishes its CRL',
    description: 'Idempotent: disabling a disabled authority returns it unchanged. There is no re-enable. Requires the admin role.',
  })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: AuthorityDto, description: 'The authority, now disabled' })
  @ApiSecured()
  @ApiProblems(400, 404)
  async disableAuthority(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.disable(ctx, id));
  }

  @Get(':id/certificate')
  @Public()
  @Header('Content-Type', 'application/pkix-cert')
  @Header('Cache-Control', 'public, max-age=3600')
  @ApiOperation({
    summary: 'The CA certificate, DER (the AIA caIssuers URL of certificates it issued)',
    description: 'Public: relying parties follow this URL from the certificates the authority issued. Cacheable for an hour.',
  })
  @ApiIdParam('authority')
  @ApiProduces('application/pkix-cert')
  @ApiOkResponse({ description: 'DER certificate', content: { 'application/pkix-cert': { schema: { type: 'string', format: 'binary' } } } })
  @ApiProblems(400, 404)
  async getAuthorityCertificate(@Param('id', UuidParam) id: string): Promise<StreamableFile> {
    return new StreamableFile((await this.authorities.get(id)).certificateDer);
  }

  private async view(authority: Authority): Promise<AuthorityDto> {
    return toAuthorityDto(authority, pemEncode('CERTIFICATE', authority.certificateDer), await this.authorities.chainPem(authority));
  }
}
