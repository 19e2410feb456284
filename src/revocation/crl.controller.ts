import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ProblemGroups, responseHeaders } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { CrlService } from './crl.service';

@ApiTags('revocation')
@Controller('v1/authorities')
export class CrlController {
  constructor(private readonly crls: CrlService) {}

  @Get(':id/crl')
  @Public()
  @ApiOperation({
    summary: 'The authority’s current CRL, DER (the CRL Distribution Point of its certificates)',
    description:
      'Public. Regenerated on demand when a revocation happened since it was signed or its nextUpdate is near, ' +
      'so a revocation shows up at once. Disabled authorities keep publishing; a pending one (external root, no certificate yet) has no CRL (409 AUTHORITY_PENDING). Cached for at most a minute.',
  })
  @ApiIdParam('authority')
  @ApiProduces('application/pkix-crl')
  @ApiOkResponse({
    description: 'DER CRL',
    headers: responseHeaders('Cache-Control', 'Last-Modified', 'Expires'),
    content: { 'application/pkix-crl': { schema: { type: 'string', format: 'binary' } } },
  })
  @ApiProblems(Errors.authorityNotFound, Errors.authorityPending, Errors.crlRollbackDetected, Errors.crlBuildFailed, ProblemGroups.signing)
  async getAuthorityCrl(@Param('id', UuidParam) id: string, @Res({ passthrough: true }) reply: FastifyReply): Promise<Buffer> {
    const crl = await this.crls.current(id);
    const maxAge = Math.max(0, Math.floor((new Date(crl.nextUpdate).getTime() - Date.now()) / 1000));
    reply
      .header('Content-Type', 'application/pkix-crl')
      .header('Last-Modified', new Date(crl.thisUpdate).toUTCString())
      .header('Expires', new Date(crl.nextUpdate).toUTCString())
      // Short caching: a revocation must show up well before nextUpdate.
      .header('Cache-Control', `public, max-age=${Math.min(maxAge, 60)}`);
    return crl.der;
  }
}
