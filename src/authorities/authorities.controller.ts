import { Body, Controller, Get, Header, HttpCode, Param, Post, Query, StreamableFile } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../auth/actor';
import { Ctx, Public, RequirePermission } from '../auth/auth.decorators';
import { Permission } from '../auth/roles';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { pemEncode } from '../pki/der';
import { AuthoritiesService } from './authorities.service';
import { AuthorityDto, AuthorityListDto, CreateAuthorityDto, PageQueryDto, toAuthorityDto } from './authorities.dto';
import { Authority } from './authority';

@ApiTags('authorities')
@Controller('v1/authorities')
export class AuthoritiesController {
  constructor(private readonly authorities: AuthoritiesService) {}

  @Post()
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({ summary: 'Create a self-signed root or an intermediate signed by a parent CA of this service' })
  @ApiCreatedResponse({ type: AuthorityDto })
  @ApiSecured()
  @ApiProblems(400, 404, 409, 413, 422, 503)
  async createAuthority(@Ctx() ctx: RequestContext, @Body() body: CreateAuthorityDto): Promise<AuthorityDto> {
    const created = await this.authorities.create(ctx, {
      ...body,
      keyBackend: body.keyBackend ?? 'local',
      keySpec: body.keySpec ?? 'EC_P256',
    });
    return { ...(await this.view(created)), validityClamped: created.validityClamped };
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'List authorities, oldest first' })
  @ApiOkResponse({ type: AuthorityListDto })
  @ApiSecured()
  @ApiProblems(400)
  async listAuthorities(@Query() query: PageQueryDto): Promise<AuthorityListDto> {
    const page = await this.authorities.list(query.cursor, query.limit ?? 100);
    return { items: await Promise.all(page.items.map((a) => this.view(a))), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'Authority detail with its certificate and chain' })
  @ApiOkResponse({ type: AuthorityDto })
  @ApiSecured()
  @ApiProblems(400, 404)
  async getAuthority(@Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.get(id));
  }

  @Post(':id/disable')
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({ summary: 'Disable an authority: it issues nothing more, and still publishes its CRL' })
  @ApiOkResponse({ type: AuthorityDto })
  @ApiSecured()
  @ApiProblems(400, 404)
  async disableAuthority(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.disable(ctx, id));
  }

  @Get(':id/certificate')
  @Public()
  @Header('Content-Type', 'application/pkix-cert')
  @Header('Cache-Control', 'public, max-age=3600')
  @ApiOperation({ summary: 'The CA certificate, DER (the AIA caIssuers URL of certificates it issued)' })
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
