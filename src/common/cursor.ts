import { Errors } from './errors';

/** Opaque keyset-pagination cursors: base64url JSON of the last row's sort key. */
export function encodeCursor(key: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T extends Record<string, string | number>>(
  cursor: string,
  shape: { [K in keyof T]: 'string' | 'number' },
): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw Errors.invalidCursor('cursor is not one this API returned');
  }
  if (typeof value !== 'object' || value === null) throw Errors.invalidCursor('cursor is not one this API returned');
  for (const [field, type] of Object.entries(shape)) {
    const v = (value as Record<string, unknown>)[field];
    // Only what our cursors hold: safe integers, or ISO times and UUIDs.
    const ok = type === 'number' ? Number.isSafeInteger(v) && (v as number) >= 0 : typeof v === 'string' && /^[0-9A-Za-z:.+-]{1,64}$/.test(v);
    if (!ok) throw Errors.invalidCursor('cursor is not one this API returned');
  }
  return value as T;
}

/** A position in a list ordered by creation: rows strictly after (createdAt, id). */
export type CreationKey = { createdAt: string; id: string };

/**
 * One page of a list ordered by (createdAt, id): decodes the cursor, fetches one row more than asked to learn
 * whether another page follows, and encodes the next cursor from the page's last row.
 */
export async function creationPage<T extends CreationKey>(
  cursor: string | undefined,
  limit: number,
  fetch: (after: CreationKey | undefined, limit: number) => Promise<T[]>,
): Promise<{ items: T[]; nextCursor: string | null }> {
  const after = cursor ? decodeCursor<CreationKey>(cursor, { createdAt: 'string', id: 'string' }) : undefined;
  const rows = await fetch(after, limit + 1);
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
}
