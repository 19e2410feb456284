import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Errors } from './errors';
import { checkJsonShape } from './json-shape';

/**
 * Bytes of an unread request body read (and dropped) before an early answer, so the connection can serve the next
 * request; past that the connection closes after the answer. The OCSP binding (revocation/ocsp-http.ts) uses it too.
 */
export const MAX_DISCARDED_BYTES = 1024 * 1024;
/** How long an early answer waits for the rest of an unread body; past that (or MAX_DISCARDED_BYTES) the connection closes after it. */
export const MAX_DISCARD_MS = 2_000;

/**
 * Request bodies for most routes are parsed JSON, capped at BODY_LIMIT_BYTES and bounded in shape (json-shape.ts) before
 * any validation walks them. A few routes take large uploads (allow-lists of a million serials): for them the body
 * reaches the handler as the request stream, unparsed and uncapped here, and the handler reads it incrementally under
 * its own limits. Content types they accept besides JSON are listed here too; every other route answers 415 for them.
 */
export function installBodyParsers(fastify: FastifyInstance, bodyLimit: number, streamedRoutes: ReadonlySet<string>, streamedTypes: readonly string[]): void {
  const streamed = (request: FastifyRequest) => streamedRoutes.has(request.routeOptions?.url ?? '');
  // Prototype keys are let through the parser and refused by checkJsonShape, like any other unknown key.
  const parseJson = fastify.getDefaultJsonParser('ignore', 'ignore');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', (request, payload, done) => {
    if (streamed(request)) return done(null, payload);
    readLimited(payload, bodyLimit).then(
      (text) =>
        parseJson(request, text, (err, body) => {
          if (err) return done(err, undefined);
          const refusal = checkJsonShape(body);
          return refusal ? done(refusal, undefined) : done(null, body);
        }),
      (err: Error) => done(err, undefined),
    );
  });
  for (const type of streamedTypes) {
    fastify.addContentTypeParser(type, (request, payload, done) => {
      if (streamed(request)) return done(null, payload);
      done(Object.assign(new Error(`Unsupported Media Type: ${type}`), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), undefined);
    });
  }
  fastify.addHook('onSend', settleUnreadBody);
}

/**
 * An answer that comes before the request body was read to its end (a streamed upload refused early: 401, 403, 404, a
 * bad first line, too many serials; or a body refused by its declared length): left unread, the rest of the body would
 * sit in front of the next request on a keep-alive connection, which then waits until the connection times out. The
 * rest is read and dropped first, up to MAX_DISCARDED_BYTES within MAX_DISCARD_MS; past either, or when the handler
 * already destroyed the stream, the answer says `Connection: close` and the connection ends after it.
 */
async function settleUnreadBody(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const raw = request.raw;
  if (raw.complete) return;
  if (raw.destroyed || !(await discardRest(raw))) void reply.header('Connection', 'close');
}

/** Reads and drops the rest of the body; true once it has ended within the bounds. */
function discardRest(raw: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let discarded = 0;
    const finish = (ended: boolean) => {
      clearTimeout(timer);
      raw.off('data', onData).off('end', onEnd).off('error', onError);
      if (!ended) raw.pause();
      resolve(ended);
    };
    const onData = (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > MAX_DISCARDED_BYTES) finish(false);
    };
    const onEnd = () => finish(true);
    const onError = () => finish(false);
    const timer = setTimeout(() => finish(false), MAX_DISCARD_MS);
    raw.on('data', onData).on('end', onEnd).on('error', onError);
    raw.resume();
  });
}

function tooLarge(): Error {
  return Object.assign(new Error('Request body is too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
}

/** The body as text, refusing (413) once it passes `limit` bytes, by Content-Length or by what arrives. */
function readLimited(payload: NodeJS.ReadableStream & { headers?: Record<string, string | string[] | undefined> }, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(payload.headers?.['content-length']);
    // The body is left unread: settleUnreadBody deals with it once the 413 is on its way.
    if (Number.isFinite(declared) && declared > limit) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        payload.removeListener('data', onData);
        payload.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    payload.on('data', onData);
    payload.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    // The client went away (or cut the body short): nobody will read the answer, and it is no server fault.
    payload.on('error', () => reject(Errors.requestAborted('the request body was cut off')));
  });
}
