import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * Request bodies for most routes are parsed JSON, capped at BODY_LIMIT_BYTES. A few routes take large uploads
 * (allow-lists of a million serials): for them the body reaches the handler as the request stream, unparsed and
 * uncapped here, and the handler reads it incrementally under its own limits. Content types they accept besides
 * JSON are listed here too; every other route answers 415 for them.
 */
export function installBodyParsers(fastify: FastifyInstance, bodyLimit: number, streamedRoutes: ReadonlySet<string>, streamedTypes: readonly string[]): void {
  const streamed = (request: FastifyRequest) => streamedRoutes.has(request.routeOptions?.url ?? '');
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', (request, payload, done) => {
    if (streamed(request)) return done(null, payload);
    readLimited(payload, bodyLimit).then(
      (text) => parseJson(request, text, done),
      (err: Error) => done(err, undefined),
    );
  });
  for (const type of streamedTypes) {
    fastify.addContentTypeParser(type, (request, payload, done) => {
      if (streamed(request)) return done(null, payload);
      done(Object.assign(new Error(`Unsupported Media Type: ${type}`), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), undefined);
    });
  }
}

function tooLarge(): Error {
  return Object.assign(new Error('Request body is too large'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
}

/** The body as text, refusing (413) once it passes `limit` bytes, by Content-Length or by what arrives. */
function readLimited(payload: NodeJS.ReadableStream & { headers?: Record<string, string | string[] | undefined> }, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(payload.headers?.['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      payload.resume();
      return reject(tooLarge());
    }
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) {
        payload.removeListener('data', onData);
        payload.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    payload.on('data', onData);
    payload.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    payload.on('error', reject);
  });
}
