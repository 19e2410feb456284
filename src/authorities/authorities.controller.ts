import { Body, Controller, Get, HttpCode, Param, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequestContext } from '../common/actor';
import { Ctx, Public, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured, binaryContent, ProblemGroups, responseHeaders } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { pemEncode } from '../pki/der';
import { certificateFile, MEDIA_TYPES } from '../pki/certificate-files';
import { sendDownload } from '../common/downloads';
import { AuthoritiesService } from './authorities.service';
import { PageQueryDto } from '../common/page-query.dto';
import { AuthorityCertificateQueryDto, AuthorityDto, AuthorityListDto, CreateAuthorityDto, SigningWindowDto, toAuthorityDto, UploadAuthorityCertificateDto } from './authorities.dto';
import { Authority, hasCertificate } from './authority';
import { Idempotent } from '../common/idempotency';

@ApiTags('authorities')
@Controller('v1/authorities')
export class AuthoritiesController {
  constructor(private readonly authorities: AuthoritiesService) {}

  @Post()
  @Idempotent()
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Create a self-signed root, an intermediate signed by a parent CA of this service, or one for an external root',
    description:
      'Generates the CA key in the chosen backend and signs the CA certificate. An intermediate needs an active, ' +
      'unexpired parent (`parentId`); its validity is clamped to the parent’s (`validityClamped`) and its path length ' +
      'must fit under the parent’s. With `"parent": "external"` instead, the intermediate is created `pending` with a ' +
      'CSR (`csrPem`) for an external (offline) root to sign; upload the result with POST /v1/authorities/{id}/certificate ' +
      '(docs/external-roots.md). Requires the admin role.',
  })
  @ApiCreatedResponse({ type: AuthorityDto, description: 'The new authority, with its certificate and chain (or, pending, its CSR)' })
  @ApiSecured()
  @ApiProblems(Errors.invalidSubject, Errors.parentRequired, Errors.pathLengthExceeded, Errors.authorityPending, ProblemGroups.issuer, ProblemGroups.keyCreation)
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
  @ApiProblems(Errors.authorityNotFound)
  async getAuthority(@Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.get(id));
  }

  @Post(':id/disable')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Disable an authority: it issues nothing more, and still publishes its CRL',
    description: 'Idempotent: disabling a disabled authority returns it unchanged. There is no re-enable. Requires the admin role.',
  })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: AuthorityDto, description: 'The authority, now disabled' })
  @ApiSecured()
  @ApiProblems(Errors.authorityNotFound)
  async disableAuthority(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.disable(ctx, id));
  }

  @Post(':id/signing-window')
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Open an offline root’s signing window: it may sign intermediates, CRLs and OCSP signer certificates until then',
    description:
      'For a root created with `offline: true` (docs/key-ceremony.md). The window lasts `minutes` from now (at most 24 hours) and ' +
      'is audited (authority.signing_enabled, with the reason). Opening it again sets a new end. Requires the admin role.',
  })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: AuthorityDto, description: 'The authority, with signingEnabledUntil' })
  @ApiSecured()
  @ApiProblems(Errors.authorityNotFound, Errors.authorityNotOffline)
  async openSigningWindow(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Body() body: SigningWindowDto): Promise<AuthorityDto> {
    return this.view(await this.authorities.openSigningWindow(ctx, id, body.minutes, body.reason));
  }

  @Post(':id/signing-window/close')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Close an offline root’s signing window now',
    description: 'Audited (authority.signing_disabled) when a window was open; closing a closed window changes nothing. Requires the admin role.',
  })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: AuthorityDto, description: 'The authority, signingEnabledUntil null' })
  @ApiSecured()
  @ApiProblems(Errors.authorityNotFound, Errors.authorityNotOffline)
  async closeSigningWindow(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<AuthorityDto> {
    return this.view(await this.authorities.closeSigningWindow(ctx, id));
  }

  @Post(':id/certificate')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Upload the certificate an external root signed for a pending authority, with that root’s chain',
    description:
      'For an authority created with `"parent": "external"`. The certificate and chain are validated before anything ' +
      'is stored: the chain builds from the certificate to a self-signed root in `chainPem`, every signature verifies, ' +
      'every certificate is valid now, each is a CA (basicConstraints) within its issuers’ pathLen, each has keyUsage ' +
      'keyCertSign (the uploaded one also cRLSign), the certificate’s key is the authority’s key and its subject is ' +
      'the CSR’s. Each failed check is a 422 with its own code. On success the authority is active and its chain ends with the ' +
      'uploaded one. A second upload is refused (409 AUTHORITY_NOT_PENDING). Requires the admin role.',
  })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: AuthorityDto, description: 'The authority, now active, with its certificate and chain' })
  @ApiSecured()
  @ApiProblems(
    Errors.authorityNotFound,
    Errors.authorityNotPending,
    Errors.uploadedCertificateUnreadable,
    Errors.uploadedCertificateKeyMismatch,
    Errors.uploadedCertificateSubjectMismatch,
    Errors.uploadedCertificateCrlSignMissing,
    Errors.chainTooLong,
    Errors.chainIncomplete,
    Errors.chainSignatureInvalid,
    Errors.chainWeakSignatureAlgorithm,
    Errors.chainCertificateExpired,
    Errors.chainCertificateNotYetValid,
    Errors.chainNotACa,
    Errors.chainPathLengthExceeded,
    Errors.chainKeyCertSignMissing,
  )
  async uploadAuthorityCertificate(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Body() body: UploadAuthorityCertificateDto): Promise<AuthorityDto> {
    return this.view(await this.authorities.certify(ctx, id, body));
  }

  @Get(':id/certificate')
  @Public()
  @ApiOperation({
    summary: 'The CA certificate: DER (the AIA caIssuers URL of certificates it issued), or with ?format= PEM or PKCS #7 with its chain',
    description:
      'Public: relying parties follow this URL from the certificates the authority issued. Cacheable for an hour. Without `format` ' +
      '(or `format=der`) the answer is the DER certificate, `application/pkix-cert`. `format=pem`: the CA certificate followed by each ' +
      'parent up to the root, `application/x-pem-file`. `format=p7b`: the same certificates as a certs-only PKCS #7 (CMS SignedData ' +
      'without signers, RFC 8551 §3.2.2), DER, `application/pkcs7-mime; smime-type=certs-only` (binary, not base64 as in S/MIME or EST). ' +
      'With a `format` the answer is an attachment (Content-Disposition). See docs/downloads.md.',
  })
  @ApiIdParam('authority')
  @ApiProduces(MEDIA_TYPES.der, MEDIA_TYPES.pem, MEDIA_TYPES.p7b)
  @ApiOkResponse({
    description: 'The CA certificate (DER), or the CA certificate and its chain (PEM, PKCS #7)',
    headers: responseHeaders('Cache-Control', 'Content-Disposition'),
    content: binaryContent(MEDIA_TYPES.der, MEDIA_TYPES.pem, MEDIA_TYPES.p7b),
  })
  @ApiProblems(Errors.authorityNotFound, Errors.authorityPending)
  async getAuthorityCertificate(
    @Param('id', UuidParam) id: string,
    @Query() query: AuthorityCertificateQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<StreamableFile> {
    const authority = await this.authorities.get(id);
    // A pending authority (external root, certificate not uploaded yet) has nothing to download.
    this.authorities.assertCertified(authority);
    // Set once the authority is found: a problem is never cached (ProblemFilter), so a CA created later is seen.
    reply.header('Cache-Control', 'public, max-age=3600');
    if (query.format === undefined) {
      reply.header('Content-Type', MEDIA_TYPES.der);
      return new StreamableFile(authority.certificateDer);
    }
    const [certificate, ...parents] = await this.authorities.chainDerById(authority.id);
    const file = certificateFile(query.format, certificate, parents);
    return sendDownload(reply, { ...file, filename: `${authority.serial}.${file.extension}` });
  }

  private async view(authority: Authority): Promise<AuthorityDto> {
    if (!hasCertificate(authority)) return toAuthorityDto(authority, null, null);
    return toAuthorityDto(authority, pemEncode('CERTIFICATE', authority.certificateDer), await this.authorities.chainPem(authority));
  }
}
