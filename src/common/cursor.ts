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
