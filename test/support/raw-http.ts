import * as net from 'node:net';
import * as tls from 'node:tls';

/** One HTTP/1.1 answer read off a raw connection. */
export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

export interface RawOptions {
  /** The server's CA, for an https base URL. */
  ca?: string;
  /** How long to wait for answers; default 5 s. */
  timeoutMs?: number;
  /** Half-close the connection after writing (a client that gives up mid-request). */
  endAfterWrite?: boolean;
}

/**
 * Writes `request` as it is (malformed, oversized or truncated requests that HTTP clients refuse to send) on a fresh
 * connection to the test app, and reads the first answer. Null when the server closed, or sent nothing within the
 * timeout (then the connection is dropped).
 */
export async function rawRequest(baseUrl: string, request: string | Buffer, options: RawOptions = {}): Promise<RawResponse | null> {
  return (await exchange(baseUrl, request, options, true))[0] ?? null;
}

/** Like rawRequest, but reads every answer until the server closes the connection (or the timeout). */
export function rawResponses(baseUrl: string, request: string | Buffer, options: RawOptions = {}): Promise<RawResponse[]> {
  return exchange(baseUrl, request, options, false);
}

function exchange(baseUrl: string, request: string | Buffer, options: RawOptions, firstOnly: boolean): Promise<RawResponse[]> {
  const url = new URL(baseUrl);
  const port = Number(url.port);
  return new Promise((resolve) => {
    const send = () => {
      socket.write(request);
      if (options.endAfterWrite) socket.end();
    };
    const socket: net.Socket =
      url.protocol === 'https:' ? tls.connect({ host: url.hostname, port, ca: options.ca, servername: 'localhost' }, send) : net.connect(port, url.hostname, send);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponses(Buffer.concat(chunks)));
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (firstOnly && parseResponses(Buffer.concat(chunks)).length > 0) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}

/** The complete answers in `bytes`, in order (each framed by its Content-Length). */
export function parseResponses(bytes: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return responses;
    const [statusLine, ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!match) return responses;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (rest.length < end + 4 + length) return responses;
    const body = rest.subarray(end + 4, end + 4 + length);
    responses.push({ status: Number(match[1]), headers, body, text: body.toString('utf8') });
    rest = rest.subarray(end + 4 + length);
  }
}
