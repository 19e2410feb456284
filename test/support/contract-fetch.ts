import * as https from 'node:https';
import { contractError } from './response-validator';
import { recordSecretsIn } from './log-capture';

/**
 * A fetch for the generated client (clients/fleet-pki-client.ts `connect({ fetch })`) that checks every answer
 * against openapi.yaml with the response validator, as supertest agents are checked (test-app.ts): a mismatch is
 * kept in `mismatches` and thrown, so the client call fails and the suite can also assert none happened. The
 * response handed back to the client is untouched (the check reads a clone). Every secret sent or answered is
 * recorded for the log scan of the run (log-capture.ts).
 */
export function contractCheckedFetch(inner: typeof globalThis.fetch = globalThis.fetch): { fetch: typeof globalThis.fetch; mismatches: string[]; checked: () => number } {
  const mismatches: string[] = [];
  let checked = 0;
  const checkedFetch: typeof globalThis.fetch = async (input, init) => {
    const request = new Request(input, init);
    const sent = request.body ? await request.clone().text() : undefined;
    recordSecretsIn(Object.fromEntries(request.headers), parseJson(sent));
    const response = await inner(request);
    const bytes = Buffer.from(await response.clone().arrayBuffer());
    const headers = Object.fromEntries(response.headers);
    const essence = (headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    let body: unknown = bytes;
    if (essence === 'application/json' || essence.endsWith('+json')) body = bytes.length ? JSON.parse(bytes.toString('utf8')) : undefined;
    else if (essence.startsWith('text/')) body = bytes.toString('utf8');
    recordSecretsIn(headers, body);
    checked++;
    const mismatch = contractError({ method: request.method, url: request.url, status: response.status, headers, body });
    if (mismatch) {
      mismatches.push(mismatch.message);
      throw mismatch;
    }
    return response;
  };
  return { fetch: checkedFetch, mismatches, checked: () => checked };
}

function parseJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A fetch over node:https that trusts `ca` and, with `cert` and `key`, presents a client certificate (mutual TLS):
 * the global fetch cannot present one per client. For the generated client's `connect({ fetch })`.
 */
export function tlsFetch(tls: { ca: string; cert?: string; key?: string }): typeof globalThis.fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const url = new URL(request.url);
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(
        { hostname: url.hostname, port: url.port, path: url.pathname + url.search, method: request.method, headers: Object.fromEntries(request.headers), agent: false, ...tls },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) for (const one of [value ?? []].flat()) headers.append(name, one);
            const status = res.statusCode ?? 0;
            resolve(new Response([204, 205, 304].includes(status) ? null : Buffer.concat(chunks), { status, headers }));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };
}
