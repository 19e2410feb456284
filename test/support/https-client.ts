import * as https from 'node:https';
import type { Response } from 'supertest';
import { contractError } from './response-validator';

/**
 * A JSON POST over HTTPS to a test app that terminates TLS itself, trusting `serverCaPem`, optionally presenting a
 * client certificate (mutual TLS). supertest cannot present one per request, hence this. The answer is checked
 * against openapi.yaml: a mismatch rejects.
 */
export function postJsonOverTls(
  baseUrl: string,
  path: string,
  body: object,
  options: { serverCaPem: string; client?: { cert: string; key: string }; headers?: Record<string, string> },
): Promise<{ status: number; body: Response['body'] }> {
  const payload = JSON.stringify(body);
  const url = new URL(path, baseUrl);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        ca: options.serverCaPem,
        ...options.client,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body: Response['body'] = JSON.parse(Buffer.concat(chunks).toString() || '{}');
          // Checked against openapi.yaml like every supertest response (response-validator.ts).
          const mismatch = contractError({ method: 'POST', url: url.pathname, status: res.statusCode ?? 0, headers: res.headers, body });
          if (mismatch) reject(mismatch);
          else resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
