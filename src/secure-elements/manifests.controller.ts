import { Readable } from 'node:stream';
import { Controller, Get, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBody, ApiConsumes, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { RequestContext } from '../common/actor';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured } from '../common/openapi';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/pipes';
import { Permission } from '../common/roles';
import { ManifestImportDto, ManifestImportListDto, toManifestImportDto, UploadManifestQueryDto } from './manifests.dto';
import { ManifestImportsService } from './manifest-imports.service';

export const MANIFEST_SIGNER_HEADER = 'x-manifest-signer-certificate';

@ApiTags('secure-elements')
@Controller('v1/manifests')
export class ManifestsController {
  constructor(private readonly imports: ManifestImportsService) {}

  @Post()
  @RequirePermission(Permission.ImportManifests)
  @ApiOperation({
    summary: 'Import a secure-element manifest (Microchip Trust Platform format): pre-provisioned identities, streamed, resumable',
    description:
      'Body: the manifest as the vendor ships it, a JSON array of signed secure elements (flattened JWS: protected, payload, header.uniqueId, ' +
      'signature), streamed to the data directory (MANIFEST_MAX_BYTES, MANIFEST_MAX_ENTRIES). Header X-Manifest-Signer-Certificate: the ' +
      'vendor’s manifest signer certificate, base64 DER (a PEM body on one line). Each entry’s signature must verify with it and its ' +
      'device certificate must chain to the signer in its x5c; the rest import while refused entries are listed by index. Answers 202 with ' +
      'the import (progress at GET /v1/manifests/{id}); the same manifest and signer uploaded again answer 200 with the existing import and ' +
      'change nothing. Imported identities are in GET /v1/certificates (origin imported, profile pre-provisioned, thing name = uniqueId), ' +
      'revocable there (AWS IoT REVOKED; on no CRL of ours). See docs/secure-elements.md. Requires the operator or admin role.',
  })
  @ApiConsumes('application/json')
  @ApiBody({ schema: { type: 'array', items: { type: 'object', properties: { protected: { type: 'string' }, payload: { type: 'string' }, header: { type: 'object' }, signature: { type: 'string' } } } } })
  @ApiHeader({ name: 'X-Manifest-Signer-Certificate', required: true, description: 'The manifest signer certificate, base64 DER' })
  @ApiAcceptedResponse({ type: ManifestImportDto, description: 'A new import, started' })
  @ApiOkResponse({ type: ManifestImportDto, description: 'The same manifest was uploaded before: its import' })
  @ApiSecured()
  @ApiProblems(Errors.invalidManifest, Errors.invalidManifestSigner, Errors.iotTargetNotFound, Errors.requestAborted)
  async uploadManifest(
    @Ctx() ctx: RequestContext,
    @Query() query: UploadManifestQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ManifestImportDto> {
    const body = request.body;
    if (!(body instanceof Readable)) throw Errors.unsupportedMediaType('send the manifest as application/json');
    const signer = request.headers[MANIFEST_SIGNER_HEADER];
    if (typeof signer !== 'string' || signer.length === 0) throw Errors.invalidManifestSigner('the X-Manifest-Signer-Certificate header (base64 DER) is required');
    if (signer.length > 16384) throw Errors.invalidManifestSigner('the X-Manifest-Signer-Certificate header is too long');
    const { job, created } = await this.imports.upload(ctx, abortAware(body), {
      signerCertificate: signer,
      registration: query.registration ?? 'without-ca',
      iotTargetId: query.iotTargetId,
      policyName: query.policyName,
    });
    void reply.status(created ? 202 : 200);
    return toManifestImportDto(job);
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'Manifest imports, newest first', description: 'Any role may read.' })
  @ApiOkResponse({ type: ManifestImportListDto })
  @ApiSecured()
  @ApiProblems()
  async listManifestImports(@Query() query: PageQueryDto): Promise<ManifestImportListDto> {
    const { items, nextCursor } = await this.imports.list(query.cursor, query.limit ?? 100);
    return { items: items.map(toManifestImportDto), nextCursor };
  }

  @Get(':id')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'A manifest import’s progress: counts and the first refused entries by index',
    description: 'Readable while it runs: `processed` of `total` entries are committed. Any role may read.',
  })
  @ApiIdParam('manifest import')
  @ApiOkResponse({ type: ManifestImportDto })
  @ApiSecured()
  @ApiProblems(Errors.manifestImportNotFound)
  async getManifestImport(@Param('id', UuidParam) id: string): Promise<ManifestImportDto> {
    return toManifestImportDto(await this.imports.get(id));
  }
}

/** The body's chunks; a stream error (the client went away) becomes REQUEST_ABORTED. */
async function* abortAware(body: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
  } catch {
    throw Errors.requestAborted('the request body was cut off');
  }
}
