import { Body, Controller, Get, HttpCode, Param, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiCreatedResponse, ApiExtraModels, ApiOkResponse, ApiOperation, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured, binaryContent, ProblemGroups, responseHeaders } from '../common/openapi';
import { sendDownload } from '../common/downloads';
import { certificateFile, MEDIA_TYPES } from '../pki/certificate-files';
import { UuidParam } from '../common/pipes';
import { CertificatesService } from './certificates.service';
import {
  CertificateDto,
  CertificateFormatQueryDto,
  CertificateListDto,
  CertificateQueryDto,
  IssueCertificateDto,
  RevokeCertificateDto,
  toCertificateDto,
  toSummaryDto,
} from './certificates.dto';
import { CertificateRecord } from './certificate';
import { Idempotent } from '../common/idempotency';

@ApiTags('certificates')
@Controller('v1/certificates')
export class CertificatesController {
  constructor(
    private readonly certificates: CertificatesService,
    private readonly clock: Clock,
  ) {}

  @Post()
  @Idempotent()
  @RequirePermission(Permission.IssueCertificates)
  @ApiOperation({
    summary: 'Issue a certificate from a CSR under a profile',
    description:
      'The CSR’s signature, key and subject are checked against the profile (`device` or `server`); the profile decides ' +
      'the subject, extensions and maximum validity. The issuing authority must be active and unexpired. ' +
      'The AWS IoT target it is registered in follows IOT_PROFILE_ALLOCATION for its profile (default: the `default` target; ' +
      '404 IOT_TARGET_NOT_FOUND when the allocation names a target that no longer exists). ' +
      'Requires the admin or operator role.',
  })
  @ApiCreatedResponse({ type: CertificateDto, description: 'The issued certificate, with its chain' })
  @ApiSecured()
  @ApiProblems(ProblemGroups.csr, ProblemGroups.issuance, Errors.iotTargetNotFound)
  async issueCertificate(@Ctx() ctx: RequestContext, @Body() body: IssueCertificateDto): Promise<CertificateDto> {
    return this.view(await this.certificates.issue(ctx, body, { iotTargetId: this.certificates.iotTargetFor(body) }));
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'Search certificates, newest first, with cursor pagination',
    description: 'Filters combine with AND. Pass `nextCursor` from a page as `cursor` to get the next one; it is null on the last page.',
  })
  @ApiOkResponse({ type: CertificateListDto, description: 'A page of certificate summaries' })
  @ApiSecured()
  async listCertificates(@Query() query: CertificateQueryDto): Promise<CertificateListDto> {
    const page = await this.certificates.search({ ...query, limit: query.limit ?? 100 });
    const now = this.clock.now();
    return { items: page.items.map((record) => toSummaryDto(record, now)), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'Certificate detail with PEM and chain; ?format=pem|der|p7b downloads it',
    description:
      'Without `format` (or `format=json`) the detail as JSON. The downloads are attachments named after the serial: `format=pem` the ' +
      'certificate then its chain up to the root (`application/x-pem-file`); `format=der` the certificate alone (`application/pkix-cert`); ' +
      '`format=p7b` the certificate and its chain as a certs-only PKCS #7, DER (`application/pkcs7-mime; smime-type=certs-only`). ' +
      'See docs/downloads.md.',
  })
  @ApiIdParam('certificate')
  @ApiExtraModels(CertificateDto)
  @ApiOkResponse({
    description: 'The certificate (JSON), or a file: the certificate followed by its chain (PEM, PKCS #7), or the certificate alone (DER)',
    headers: responseHeaders('Content-Disposition'),
    content: {
      'application/json': { schema: { $ref: getSchemaPath(CertificateDto) } },
      ...binaryContent(MEDIA_TYPES.pem, MEDIA_TYPES.der, MEDIA_TYPES.p7b),
    },
  })
  @ApiSecured()
  @ApiProblems(Errors.certificateNotFound)
  async getCertificate(
    @Param('id', UuidParam) id: string,
    @Query() query: CertificateFormatQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CertificateDto | StreamableFile> {
    const record = await this.certificates.get(id);
    if (query.format === undefined || query.format === 'json') return this.view(record);
    const file = certificateFile(query.format, record.certificateDer, await this.certificates.chainDerOf(record));
    return sendDownload(reply, { ...file, filename: `${record.serial}.${file.extension}` });
  }

  @Post(':id/revoke')
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.RevokeCertificates)
  @ApiOperation({
    summary: 'Revoke a certificate with an RFC 5280 reason; the CA’s CRL is republished',
    description:
      'Revocation is final: a second call answers 409 CERTIFICATE_ALREADY_REVOKED. The CRL is re-signed right away; ' +
      'if that fails the revocation still stands and the next CRL request regenerates it. A claim certificate (profile `claim`) is ' +
      'revoked only with its claim, by POST /v1/claims/{id}/revoke: here it answers 409 USE_CLAIM_REVOCATION naming the claim ' +
      '(`claimId`), for every role. Requires the admin or operator role.',
  })
  @ApiIdParam('certificate')
  @ApiOkResponse({ type: CertificateDto, description: 'The certificate, now revoked' })
  @ApiSecured()
  @ApiProblems(Errors.certificateNotFound, Errors.certificateAlreadyRevoked, Errors.useClaimRevocation)
  async revokeCertificate(
    @Ctx() ctx: RequestContext,
    @Param('id', UuidParam) id: string,
    @Body() body: RevokeCertificateDto,
  ): Promise<CertificateDto> {
    return this.view(await this.certificates.revoke(ctx, id, body.reason));
  }

  private async view(record: CertificateRecord): Promise<CertificateDto> {
    return toCertificateDto(record, await this.certificates.chainPemOf(record), this.clock.now());
  }
}
