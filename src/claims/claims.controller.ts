import { Readable } from 'node:stream';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Query, Req, Res, StreamableFile } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiCreatedResponse, ApiExtraModels, ApiOkResponse, ApiOperation, ApiProperty, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { CertificatesService } from '../certificates/certificates.service';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiRequestContent, ApiSecured, binaryContent, ProblemGroups, responseHeaders } from '../common/openapi';
import { sendDownload } from '../common/downloads';
import { MEDIA_TYPES } from '../pki/certificate-files';
import { pkcs12PasswordProblem } from '../pki/pkcs12';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/pipes';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { AllowlistUploads } from './allowlist-uploads';
import { checkThingAttributes } from './attributes';
import { ClaimDto, ClaimListDto, CreateClaimDto, CreateClaimQueryDto, CreatedClaimDto, RevokeClaimDto, RevokedClaimDto, toClaimCertificateDto, toClaimDto } from './claims.dto';
import { ClaimsService } from './claims.service';
import { readSerials, SerialListError } from './serial-list';
import { Idempotent } from '../common/idempotency';

class AllowlistResultDto {
  @ApiProperty({ format: 'uuid' }) claimId: string;
  @ApiProperty({ type: 'integer', description: 'Distinct serials now on the allow-list' }) allowlistSize: number;
}

@ApiTags('claims')
@Controller('v1/claims')
export class ClaimsController {
  constructor(
    private readonly claims: ClaimsService,
    private readonly certificates: CertificatesService,
    private readonly allowlists: AllowlistUploads,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @Idempotent()
  @RequirePermission(Permission.ManageClaims)
  @ApiOperation({
    summary: 'Create a factory claim and its claim certificate',
    description:
      'The claim certificate (clientAuth, plus a policy that marks it claim-only) is issued by `claimAuthorityId`, an authority with usage ' +
      '`claims`; stations authenticate to POST /v1/provisioning/exchange with it. With `generateKey: true` its private key is in the ' +
      'answer, this once, and is never stored. With `?format=p12` (and `generateKey: true` and `pkcs12Password`) the answer is instead a ' +
      'PKCS #12 file (`application/x-pkcs12`, attachment) holding that key, the claim certificate and its chain, encrypted with the ' +
      'password (PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC; HMAC-SHA256 MAC; see docs/downloads.md); the claim is then at `Location` and ' +
      'its id in `X-Claim-Id`. The claim and its audit events are the same either way. Requires the admin role.',
  })
  @ApiExtraModels(CreatedClaimDto)
  @ApiCreatedResponse({
    description: 'The claim, with its claim certificate (and key when generated); with ?format=p12 the key, certificate and chain as PKCS #12',
    headers: responseHeaders('Location', 'X-Claim-Id', 'Content-Disposition'),
    content: { 'application/json': { schema: { $ref: getSchemaPath(CreatedClaimDto) } }, ...binaryContent(MEDIA_TYPES.p12) },
  })
  @ApiSecured()
  @ApiProblems(Errors.invalidClaim, Errors.policyTemplateNotFound, Errors.iotTargetNotFound, ProblemGroups.csr, ProblemGroups.issuance, ProblemGroups.iotCall)
  async createClaim(
    @Ctx() ctx: RequestContext,
    @Body() body: CreateClaimDto,
    @Query() query: CreateClaimQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CreatedClaimDto | StreamableFile> {
    // The password goes nowhere but into the file: not to the service's input, the audit details or a message.
    const { pkcs12Password, ...input } = body;
    const asPkcs12 = query.format === 'p12';
    if (asPkcs12) {
      if (input.claimCertificate.generateKey !== true) throw Errors.validation('format=p12 needs claimCertificate.generateKey: true (the service holds no key of a CSR)');
      const problem = pkcs12PasswordProblem(pkcs12Password);
      if (problem) throw Errors.validation(`pkcs12Password: ${problem} with format=p12`);
    } else if (pkcs12Password !== undefined) {
      throw Errors.validation('pkcs12Password applies only with ?format=p12');
    }
    if (input.iot?.attributes) checkThingAttributes(input.iot.attributes, 'iot.attributes');
    const created = await this.claims.create(ctx, input);
    if (asPkcs12) {
      const file = await this.claims.claimPkcs12(created, pkcs12Password!);
      reply.header('Location', `/v1/claims/${created.claim.id}`).header('X-Claim-Id', created.claim.id);
      return sendDownload(reply, { bytes: file, contentType: MEDIA_TYPES.p12, filename: `claim-${created.claim.id}.p12` });
    }
    const chainPem = await this.certificates.chainPem(created.claimCertificate.authorityId);
    return { ...toClaimDto(created.claim), claimCertificate: toClaimCertificateDto(created.claimCertificate, chainPem, created.privateKeyPem) };
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'List claims with their usage, oldest first, with cursor pagination',
    description: 'Each claim shows its quota (maxDevices, used, remaining), allow-list size and last exchange. Any role may read.',
  })
  @ApiOkResponse({ type: ClaimListDto })
  @ApiSecured()
  async listClaims(@Query() query: PageQueryDto): Promise<ClaimListDto> {
    const page = await this.claims.list(query.cursor, query.limit ?? 100);
    return { items: page.items.map(toClaimDto), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'Claim detail: quota (maxDevices, used, remaining), allow-list size, last exchange',
    description: 'The claim certificate itself is at GET /v1/certificates/{claimCertificateId}; its key is never stored. Any role may read.',
  })
  @ApiIdParam('claim')
  @ApiOkResponse({ type: ClaimDto })
  @ApiSecured()
  @ApiProblems(Errors.claimNotFound)
  async getClaim(@Param('id', UuidParam) id: string): Promise<ClaimDto> {
    return toClaimDto(await this.claims.get(id));
  }

  @Put(':id/allowlist')
  @RequirePermission(Permission.ManageClaims)
  @ApiOperation({
    summary: 'Replace the claim’s allow-list of device serials (JSON array or CSV, streamed)',
    description:
      'Body: a JSON array of serials (`application/json`), or CSV (`text/csv`) with the serial in the first column and an optional ' +
      '`serial` header line. The body is read as it arrives, so lists of a million serials work (ALLOWLIST_MAX_SERIALS, ' +
      'ALLOWLIST_MAX_BYTES). The new list is written beside the one in force and replaces it at once when complete: on any error ' +
      'nothing changes, and exchanges go on meanwhile under the previous list. From the first upload on, only listed serials can be ' +
      'exchanged (an empty list stops all). A process writes ALLOWLIST_UPLOAD_CONCURRENCY uploads at once and queues ' +
      'ALLOWLIST_UPLOAD_QUEUE more; beyond that it answers 503 ALLOWLIST_UPLOADS_BUSY with Retry-After. Requires the admin role.',
  })
  @ApiIdParam('claim')
  @ApiConsumes('application/json', 'text/csv')
  @ApiBody({ schema: { type: 'array', items: { type: 'string' } } })
  @ApiRequestContent({
    'application/json': { schema: { type: 'array', items: { type: 'string' }, description: 'The serials', example: ['SN0001', 'SN0002'] } },
    'text/csv': { schema: { type: 'string', description: 'The serial in the first column; an optional `serial` header line', example: 'serial\nSN0001\nSN0002\n' } },
  })
  @ApiOkResponse({ type: AllowlistResultDto })
  @ApiSecured()
  @ApiProblems(Errors.claimNotFound, Errors.invalidAllowlist, Errors.allowlistUploadsBusy, Errors.allowlistUploadSuperseded, Errors.requestAborted)
  async replaceAllowlist(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Req() request: FastifyRequest): Promise<AllowlistResultDto> {
    const body = request.body;
    if (!(body instanceof Readable)) throw Errors.unsupportedMediaType('send the list as application/json or text/csv');
    const format = String(request.headers['content-type']).toLowerCase().startsWith('text/csv') ? 'csv' : 'json';
    // Streamed into a staging version as it is read and validated (see AllowlistUploads); no transaction spans the upload.
    const serials = readSerials(abortAware(body), format, { maxSerials: this.config.claims.allowlistMaxSerials, maxBytes: this.config.claims.allowlistMaxBytes });
    try {
      const { size } = await this.allowlists.replace(ctx, id, serials);
      return { claimId: id, allowlistSize: size };
    } catch (err) {
      // The rest of the body is not read here: the answer drains or closes the connection (common/streamed-bodies.ts).
      if (err instanceof SerialListError) throw Errors.invalidAllowlist(err.message);
      throw err;
    }
  }

  @Post(':id/revoke')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.ManageClaims)
  @ApiOperation({
    summary: 'Revoke a claim: no further exchanges, claim certificate revoked; with cascade, every device certificate it provisioned',
    description:
      'Takes effect at once. With `cascade: true` every unrevoked device certificate from the claim is revoked in the same transaction ' +
      '(an audit event each, plus a summary), each authority’s CRL is regenerated once, and AWS IoT is updated through the outbox. Requires the admin role.',
  })
  @ApiIdParam('claim')
  @ApiOkResponse({ type: RevokedClaimDto })
  @ApiSecured()
  @ApiProblems(Errors.claimNotFound, Errors.claimAlreadyRevoked)
  async revokeClaim(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Body() body: RevokeClaimDto): Promise<RevokedClaimDto> {
    const { claim, revokedCertificates } = await this.claims.revoke(ctx, id, body.reason, body.cascade ?? false);
    return { ...toClaimDto(claim), revokedDeviceCertificates: revokedCertificates };
  }
}

/**
 * The body's chunks; a stream error (the client went away, or cut the body short) becomes REQUEST_ABORTED: nobody
 * reads the answer and it is no server fault, so it must not surface as a 500 with an ERROR log (as in
 * common/streamed-bodies.ts for JSON bodies).
 */
async function* abortAware(body: Readable): AsyncGenerator<Buffer | string> {
  try {
    for await (const chunk of body) yield chunk as Buffer | string;
  } catch {
    throw Errors.requestAborted('the request body was cut off');
  }
}

