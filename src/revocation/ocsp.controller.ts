import { Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '../auth/auth.decorators';
import { ApiProblems } from '../common/openapi';
import { OCSP_REQUEST_MAX_BYTES } from '../pki/ocsp';
import { OcspAnswer, OcspService } from './ocsp.service';

export const OCSP_REQUEST_TYPE = 'application/ocsp-request';
export const OCSP_RESPONSE_TYPE = 'application/ocsp-response';
const OCSP_PATH = '/ocsp';
/** Longest time an HTTP cache may keep a response: as for CRLs, a revocation must show up well before nextUpdate. */
const MAX_HTTP_CACHE_SECONDS = 60;

const RESPONSE_DOC = {
  description:
    'A DER OCSPResponse, always with HTTP 200 (RFC 6960 Appendix A): successful (signed BasicOCSPResponse), or ' +
    'malformedRequest (1), internalError (2), tryLater (3), unauthorized (6: none of the CertIDs names an authority of this service).',
  content: { [OCSP_RESPONSE_TYPE]: { schema: { type: 'string', format: 'binary' } } },
} as const;

/**
 * The OCSP responder's HTTP binding (RFC 6960 Appendix A, RFC 5019): POST of a DER request, or GET with the
 * request base64-encoded and URL-encoded in the path. Public; errors are OCSP response statuses, not problems.
 */
@ApiTags('revocation')
@Controller('ocsp')
export class OcspController {
  constructor(private readonly ocsp: OcspService) {}

  @Post()
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'OCSP responder (RFC 6960), request in the body',
    description:
      'Public. Body: a DER OCSPRequest (`Content-Type: application/ocsp-request`, at most 64 KiB, at most 100 CertIDs, ' +
      'SHA-1 or SHA-256 CertIDs, optional nonce of 1 to 32 octets echoed back). Answered by the authority’s delegated ' +
      'OCSP signer (id-kp-OCSPSigning, included in `certs`). A revocation shows up in the next answer.',
  })
  @ApiConsumes(OCSP_REQUEST_TYPE)
  @ApiBody({ description: 'DER OCSPRequest', schema: { type: 'string', format: 'binary' } })
  @ApiProduces(OCSP_RESPONSE_TYPE)
  @ApiOkResponse(RESPONSE_DOC)
  @ApiProblems(415)
  async postOcspRequest(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<Buffer> {
    // Anything but a buffer (a JSON body, say) is not an OCSP request.
    const answer = await this.ocsp.answer(Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0));
    reply.header('Content-Type', OCSP_RESPONSE_TYPE).header('Cache-Control', 'no-store');
    return answer.der;
  }

  @Get('*')
  @Public()
  @ApiOperation({
    summary: 'OCSP responder (RFC 6960), request in the URL',
    description:
      'Public. The path after /ocsp/ is the DER OCSPRequest, base64-encoded and then URL-encoded (it may contain "/"). ' +
      'Answers without a nonce carry HTTP caching headers (RFC 5019 §6.2): ETag, Last-Modified (thisUpdate) and a ' +
      `Cache-Control max-age of at most ${MAX_HTTP_CACHE_SECONDS} s and never past nextUpdate.`,
  })
  @ApiParam({ name: 'path', description: 'The DER OCSPRequest, base64-encoded, then URL-encoded (may contain "/")', schema: { type: 'string' } })
  @ApiProduces(OCSP_RESPONSE_TYPE)
  @ApiOkResponse(RESPONSE_DOC)
  // Only a URL that does not percent-decode: the router refuses it before any OCSP code runs.
  @ApiProblems(400)
  async getOcspRequest(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<Buffer> {
    const answer = await this.ocsp.answer(requestFromPath(request.url));
    reply.header('Content-Type', OCSP_RESPONSE_TYPE);
    setCachingHeaders(reply, answer);
    return answer.der;
  }
}

/** The DER request in a GET path, read from the raw URL (the router's decoding of "%2F" is not relied on); empty when unreadable. */
function requestFromPath(url: string): Buffer {
  const path = url.split('?')[0];
  let text: string;
  try {
    text = decodeURIComponent(path.slice(path.indexOf(`${OCSP_PATH}/`) + OCSP_PATH.length + 1));
  } catch {
    return Buffer.alloc(0);
  }
  // Base64 (RFC 4648 §4), tolerating the URL-safe alphabet and missing padding; anything else is malformed.
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.length > Math.ceil((OCSP_REQUEST_MAX_BYTES * 4) / 3) + 4) return Buffer.alloc(0);
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** RFC 5019 §6.2, for responses any client may reuse; the rest must not be cached. */
function setCachingHeaders(reply: FastifyReply, answer: OcspAnswer): void {
  if (!answer.reusable) {
    reply.header('Cache-Control', 'no-store');
    return;
  }
  const now = Date.now();
  const maxAge = Math.max(0, Math.min(MAX_HTTP_CACHE_SECONDS, Math.floor((answer.reusable.nextUpdate.getTime() - now) / 1000)));
  reply
    .header('Cache-Control', `public, max-age=${maxAge}, no-transform, must-revalidate`)
    .header('ETag', answer.reusable.etag)
    .header('Last-Modified', answer.reusable.thisUpdate.toUTCString())
    .header('Expires', new Date(now + maxAge * 1000).toUTCString());
}

/**
 * The body parser for application/ocsp-request: the raw bytes, for POST /ocsp only (415 elsewhere). It reads at
 * most one byte past OCSP_REQUEST_MAX_BYTES and drains the rest, so an oversized body reaches the handler and is
 * answered with the malformedRequest status, as OCSP clients expect, rather than an HTTP error. Installed next to
 * the JSON parser (app.factory.ts) without touching it.
 */
export function installOcspRequestParser(fastify: FastifyInstance): void {
  fastify.addContentTypeParser(OCSP_REQUEST_TYPE, (request, payload, done) => {
    if (request.routeOptions?.url !== OCSP_PATH || request.method !== 'POST') {
      done(Object.assign(new Error(`Unsupported Media Type: ${OCSP_REQUEST_TYPE}`), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    let finished = false;
    const finish = (err: Error | null) => {
      if (finished) return;
      finished = true;
      payload.removeListener('data', onData);
      done(err, err ? undefined : Buffer.concat(chunks, Math.min(length, OCSP_REQUEST_MAX_BYTES + 1)));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length > OCSP_REQUEST_MAX_BYTES) {
        payload.resume(); // discard the rest
        finish(null);
      }
    };
    payload.on('data', onData);
    payload.on('end', () => finish(null));
    payload.on('error', (err: Error) => finish(err));
  });
}
