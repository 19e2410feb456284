/**
 * The typed Fleet PKI client: the SDK generated from openapi.yaml (clients/typescript/, `npm run client`) bound to one
 * service and one credential. Every SDK function takes `{ client }` from here:
 *
 *   const client = connect({ baseUrl: 'http://127.0.0.1:8080', apiKey });
 *   const { data, error } = await listAuthorities({ client });
 */
import { type Client, createClient, createConfig } from './typescript/client/index.js';

export * from './typescript/index.js';
export type { Client } from './typescript/client/index.js';

export interface ConnectOptions {
  /** Where the service listens, e.g. http://127.0.0.1:8080 (no trailing /v1). */
  baseUrl: string;
  /** An API key (`fpk_…`), or a station's JWT for the exchange; sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /** A fetch to use instead of the global one (tests, proxies). */
  fetch?: typeof globalThis.fetch;
}

export function connect(options: ConnectOptions): Client {
  const apiKey = options.apiKey;
  return createClient(
    createConfig({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      // Only for operations whose security says bearer: the public ones (CRL, OCSP, health) get no header.
      auth: apiKey === undefined ? undefined : () => apiKey,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
  );
}
