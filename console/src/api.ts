/**
 * The console's connection to the service: the generated client (clients/typescript/, `npm run client`) on the page's
 * own origin. The API key lives in memory and in sessionStorage (gone when the tab closes), never in localStorage, a
 * cookie or a URL: it travels only in the Authorization header (docs/console.md).
 */
import { connect, getMe, type Client } from '../../clients/fleet-pki-client';

const SESSION_KEY = 'fleet-pki-console-api-key';

export interface Me {
  id: string;
  name: string;
  role: string;
  prefix: string;
  permissions: string[];
}

export interface Session {
  client: Client;
  me: Me;
  apiKey: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The problem+json detail of a failed call, or its status. */
export function describeError(error: unknown, response: Response | undefined): ApiError {
  const body = error as { title?: string; detail?: string; code?: string } | undefined;
  const text = body?.detail ?? body?.title ?? (typeof error === 'string' ? error : '');
  return new ApiError(response?.status ?? 0, `${response?.status ?? 'network'}${body?.code ? ` ${body.code}` : ''}${text ? `: ${text}` : ''}`);
}

/** Unwraps a generated-client result: its data, or an ApiError. */
export async function call<T>(request: Promise<{ data?: T; error?: unknown; response?: Response }>): Promise<T> {
  const { data, error, response } = await request;
  if (error !== undefined || !response?.ok) throw describeError(error, response);
  return data as T;
}

export async function signIn(apiKey: string): Promise<Session> {
  const client = connect({ baseUrl: window.location.origin, apiKey });
  const me = (await call(getMe({ client }))) as Me;
  sessionStorage.setItem(SESSION_KEY, apiKey);
  return { client, me, apiKey };
}

export function signOut(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

export function storedKey(): string | null {
  return sessionStorage.getItem(SESSION_KEY);
}

/** A GET of a route the generated client may not know yet (e.g. /v1/jobs); the key in the header only. */
export async function rawGet(session: Session, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session.apiKey}`, Accept: 'application/json' } });
  const body = response.headers.get('content-type')?.includes('json') ? await response.json() : null;
  return { status: response.status, body };
}

/** Follows nextCursor up to `maxPages` pages; `complete` is false when more were left. */
export async function allPages<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
  maxPages: number,
): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const result = await page(cursor);
    items.push(...result.items);
    if (!result.nextCursor) return { items, complete: true };
    cursor = result.nextCursor;
  }
  return { items, complete: false };
}

export function can(session: Session, permission: string): boolean {
  return session.me.permissions.includes(permission);
}
