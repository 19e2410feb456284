import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Injectable, Logger } from '@nestjs/common';
import type { HeaderObject, OpenAPIObject, ReferenceObject, ResponseObject } from '@nestjs/swagger';
import { responseHeaders, SECURITY_HEADER_NAMES } from '../common/openapi';
import { givenRequestId } from '../common/request-id';
import { MAX_DISCARDED_BYTES } from '../common/streamed-bodies';
import { securityHeaders } from '../common/security-headers';
import { HistogramSeries } from '../metrics/bound-histogram';
import { MetricsService } from '../metrics/metrics.service';
import { OCSP_REQUEST_MAX_BYTES } from '../pki/ocsp';
import { OcspAnswer, OcspService } from './ocsp.service';

const OCSP_REQUEST_TYPE = 'application/ocsp-request';
const OCSP_RESPONSE_TYPE = 'application/ocsp-response';
const OCSP_PATH = '/ocsp';
/** What the binding serves, as the router would write it. */
export const OCSP_ROUTES = [`POST ${OCSP_PATH}`, `GET ${OCSP_PATH}*`];
/** Longest time an HTTP cache may keep a response: as for CRLs, a revocation must show up well before nextUpdate. */
const MAX_HTTP_CACHE_SECONDS = 60;
/** The longest base64 text a request within OCSP_REQUEST_MAX_BYTES can take. */
const MAX_BASE64_LENGTH = Math.ceil((OCSP_REQUEST_MAX_BYTES * 4) / 3) + 4;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
/** The service's security headers (common/security-headers.ts), flat, for a plain and a TLS connection. */
const SECURITY_HEADERS = { plain: securityHeaders(false).flat(), tls: securityHeaders(true).flat() };

/** How to answer one request: its method, when it started (for the duration metric), and whether to close after. */
interface Reply {
  started: number;
  method: 'POST' | 'GET' | 'HEAD';
  closeAfter: boolean;
}

/**
 * The OCSP responder's HTTP binding (RFC 6960 Appendix A, RFC 5019 §5): `POST /ocsp` with a DER request in the
 * body, and `GET /ocsp/{base64}`. Public; every answer is an OCSPResponse with HTTP 200 (errors are OCSP response
 * statuses, not problems).
 *
 * It runs on the service's HTTP server ahead of the framework (see app.factory.ts): relying parties ask for status
 * far more often than anything else is called, and an answer from the cache costs microseconds, so the framework's
 * per-request work (routing, hooks, guards, interceptors, serialization) would be most of the cost. What the
 * framework gives the other routes is done here by hand: a bounded body, the request duration metric, the security
 * headers (common/security-headers.ts), and the X-Request-Id header, echoed when the caller sent one (the responder
 * writes no log or audit event an id would correlate, so none is made up). The OpenAPI description of both operations is `OCSP_OPENAPI_PATHS` below.
 */
@Injectable()
export class OcspHttpBinding {
  private readonly logger = new Logger('OCSP');
  private readonly durations: Record<'POST' | 'GET' | 'HEAD', HistogramSeries>;
  /** The response headers of a POST answer kept in memory, per answer, on plain and TLS connections. */
  private readonly postHeaders = { plain: new WeakMap<OcspAnswer, string[]>(), tls: new WeakMap<OcspAnswer, string[]>() };

  constructor(
    private readonly ocsp: OcspService,
    metrics: MetricsService,
  ) {
    // Bound once: the labels of these requests never change (always HTTP 200).
    const duration = (method: string, route: string) => metrics.httpDuration.series({ method, route, status: '200' });
    this.durations = { POST: duration('POST', OCSP_PATH), GET: duration('GET', `${OCSP_PATH}/*`), HEAD: duration('HEAD', `${OCSP_PATH}/*`) };
  }

  /**
   * Takes the request when it is for the responder (POST /ocsp, GET or HEAD /ocsp/…), and answers it; false leaves
   * it to the framework (another path, or another method on /ocsp, which is a 404 there as before).
   */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    const url = request.url ?? '';
    if (!url.startsWith(OCSP_PATH)) return false;
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (path !== OCSP_PATH && !path.startsWith(`${OCSP_PATH}/`)) return false;
    const started = performance.now();
    const method = request.method;
    if (method === 'POST' && (path === OCSP_PATH || path === `${OCSP_PATH}/`)) {
      this.readBody(request, (body, closeAfter) => this.answer(request, response, { started, method, closeAfter }, body));
      return true;
    }
    if (method === 'GET' || method === 'HEAD') {
      this.answer(request, response, { started, method, closeAfter: false }, requestFromPath(path));
      return true;
    }
    return false;
  }

  /**
   * The body, at most OCSP_REQUEST_MAX_BYTES + 1 bytes of it (enough for the parser to call it too large). An
   * oversized body is read to its end and dropped, up to MAX_DISCARDED_BYTES; beyond that the answer comes at once
   * and the connection closes after it.
   */
  private readBody(request: IncomingMessage, done: (body: Buffer, closeAfter: boolean) => void): void {
    const chunks: Buffer[] = [];
    let length = 0;
    const bounded = () => (chunks.length === 1 && length <= OCSP_REQUEST_MAX_BYTES ? chunks[0] : Buffer.concat(chunks).subarray(0, OCSP_REQUEST_MAX_BYTES + 1));
    const onData = (chunk: Buffer) => {
      if (length <= OCSP_REQUEST_MAX_BYTES) chunks.push(chunk);
      length += chunk.length;
      if (length > MAX_DISCARDED_BYTES) {
        request.off('data', onData).off('end', onEnd);
        done(bounded(), true);
      }
    };
    const onEnd = () => done(bounded(), false);
    // A client that goes away mid-body gets nothing: there is no one to answer.
    request.on('data', onData).on('end', onEnd).on('error', () => request.off('end', onEnd));
  }

  /**
   * Answers from the cache at once when it can (no promise, no parsing); otherwise asks the responder. Nothing may
   * escape to the HTTP server (an exception in its listener would end the process): an unexpected failure is logged
   * and the connection dropped.
   */
  private answer(request: IncomingMessage, response: ServerResponse, how: Reply, body: Buffer): void {
    const fail = (err: unknown) => {
      this.logger.error(`OCSP HTTP binding failed: ${(err as Error).stack ?? String(err)}`);
      response.destroy();
    };
    try {
      const reused = this.ocsp.reuse(body);
      if (reused) this.send(request, response, how, reused);
      // OcspService.answer resolves every failure to an OCSPResponse status.
      else this.ocsp.answer(body).then((answer) => this.send(request, response, how, answer)).catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  private send(request: IncomingMessage, response: ServerResponse, how: Reply, answer: OcspAnswer): void {
    if (response.destroyed) return;
    const tls = (request.socket as { encrypted?: boolean }).encrypted === true;
    const requestId = givenRequestId(request);
    if (how.method === 'POST' && !requestId && !how.closeAfter) {
      // The common case, a POST answered from memory: its headers were listed when the answer was first sent.
      const known = this.postHeaders[tls ? 'tls' : 'plain'];
      let headers = known.get(answer);
      if (!headers) {
        headers = ['Content-Type', OCSP_RESPONSE_TYPE, 'Content-Length', String(answer.der.length), ...SECURITY_HEADERS[tls ? 'tls' : 'plain'], 'Cache-Control', 'no-store'];
        if (answer.reusable) known.set(answer, headers);
      }
      response.writeHead(200, headers);
      response.end(answer.der);
      this.durations.POST.observe((performance.now() - how.started) / 1000);
      return;
    }
    // A flat list: the cheapest form of headers for node:http.
    const headers = ['Content-Type', OCSP_RESPONSE_TYPE, 'Content-Length', String(answer.der.length)];
    headers.push(...(tls ? SECURITY_HEADERS.tls : SECURITY_HEADERS.plain));
    if (requestId) headers.push('X-Request-Id', requestId);
    // A POST may carry a nonce, and POST answers are not for HTTP caches (RFC 5019 §5).
    if (how.method === 'POST') headers.push('Cache-Control', 'no-store');
    else headers.push(...cachingHeaders(answer));
    if (how.closeAfter) headers.push('Connection', 'close');
    response.writeHead(200, headers);
    response.end(answer.der);
    this.durations[how.method].observe((performance.now() - how.started) / 1000);
  }
}

/**
 * The DER request in a GET path: base64 (standard or URL-safe alphabet, padding optional), then URL-encoded; read
 * from the raw path, so an unencoded "/" or "+" of the base64 text is kept. Empty (malformedRequest) when unreadable.
 */
function requestFromPath(path: string): Buffer {
  const encoded = path.slice(OCSP_PATH.length + 1);
  let text: string;
  try {
    text = encoded.includes('%') ? decodeURIComponent(encoded) : encoded;
  } catch {
    return Buffer.alloc(0);
  }
  if (text.length > MAX_BASE64_LENGTH || !BASE64.test(text)) return Buffer.alloc(0);
  return Buffer.from(text, 'base64');
}

/** RFC 5019 §6.2, for answers any client may reuse; the rest must not be cached. */
function cachingHeaders(answer: OcspAnswer): string[] {
  if (!answer.reusable) return ['Cache-Control', 'no-store'];
  const now = Date.now();
  const maxAge = Math.max(0, Math.min(MAX_HTTP_CACHE_SECONDS, Math.floor((answer.reusable.nextUpdate.getTime() - now) / 1000)));
  return [
    'Cache-Control',
    `public, max-age=${maxAge}, no-transform, must-revalidate`,
    'ETag',
    answer.reusable.etag,
    'Last-Modified',
    answer.reusable.thisUpdate.toUTCString(),
    'Expires',
    new Date(now + maxAge * 1000).toUTCString(),
  ];
}

/** The binding echoes a caller's X-Request-Id and makes none up (see OcspHttpBinding). */
const ECHOED_REQUEST_ID: HeaderObject = {
  required: false,
  description: 'The caller’s X-Request-Id, echoed when it is 1-128 of A-Z a-z 0-9 . _ : -',
  schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
};

function responseDoc(headers: Record<string, HeaderObject | ReferenceObject>): ResponseObject {
  return {
    description:
      'A DER OCSPResponse, always with HTTP 200 (RFC 6960 Appendix A): successful (signed BasicOCSPResponse), or ' +
      'malformedRequest (1), internalError (2), tryLater (3), unauthorized (6: none of the CertIDs names an authority of this service).',
    headers: { 'X-Request-Id': ECHOED_REQUEST_ID, ...headers, ...responseHeaders(...SECURITY_HEADER_NAMES) },
    content: { [OCSP_RESPONSE_TYPE]: { schema: { type: 'string', format: 'binary' } } },
  };
}

/** The OpenAPI description of the binding's operations (merged into the document in openapi.ts). */
export const OCSP_OPENAPI_PATHS: OpenAPIObject['paths'] = {
  [OCSP_PATH]: {
    post: {
      operationId: 'postOcspRequest',
      summary: 'OCSP responder (RFC 6960), request in the body',
      description:
        'Public. Body: a DER OCSPRequest (`Content-Type: application/ocsp-request`, at most 64 KiB, at most 100 CertIDs, ' +
        'SHA-1 or SHA-256 CertIDs, optional nonce of 1 to 32 octets echoed back). Answered by the authority’s delegated ' +
        'OCSP signer (id-kp-OCSPSigning, included in `certs`). A revocation shows up in the next answer. A body that is ' +
        'not an OCSP request, whatever its Content-Type, is answered malformedRequest.',
      tags: ['revocation'],
      security: [],
      requestBody: { required: true, description: 'DER OCSPRequest', content: { [OCSP_REQUEST_TYPE]: { schema: { type: 'string', format: 'binary' } } } },
      // Cache-Control: no-store (a POST may carry a nonce; RFC 5019 §5).
      responses: { '200': responseDoc(responseHeaders('Cache-Control')) },
    },
  },
  [`${OCSP_PATH}/{path}`]: {
    get: {
      operationId: 'getOcspRequest',
      summary: 'OCSP responder (RFC 6960), request in the URL',
      description:
        'Public. The path after /ocsp/ is the DER OCSPRequest, base64-encoded and then URL-encoded (it may contain "/"). ' +
        'Answers without a nonce carry HTTP caching headers (RFC 5019 §6.2): ETag, Last-Modified (thisUpdate) and a ' +
        `Cache-Control max-age of at most ${MAX_HTTP_CACHE_SECONDS} s and never past nextUpdate.`,
      tags: ['revocation'],
      security: [],
      parameters: [
        { name: 'path', in: 'path', required: true, description: 'The DER OCSPRequest, base64-encoded, then URL-encoded (may contain "/")', schema: { type: 'string' } },
      ],
      // ETag, Last-Modified and Expires come with answers any client may reuse (no nonce, successful).
      responses: { '200': responseDoc(responseHeaders('Cache-Control', 'ETag', 'Last-Modified', 'Expires')) },
    },
  },
};
