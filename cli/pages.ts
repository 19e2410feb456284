/** Walks a cursor-paginated listing (`{ items, nextCursor }`, docs/contract.md) page by page. */
export const PAGE_SIZE = 500;

export async function* pages<T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>): AsyncGenerator<T[]> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield page.items;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}

/** Every item, up to `max` (all when undefined). */
export async function collect<T>(fetchPage: (cursor: string | undefined, limit: number) => Promise<{ items: T[]; nextCursor: string | null }>, max?: number): Promise<T[]> {
  const out: T[] = [];
  for await (const items of pages((cursor) => fetchPage(cursor, Math.min(PAGE_SIZE, max === undefined ? PAGE_SIZE : max - out.length)))) {
    out.push(...items);
    if (max !== undefined && out.length >= max) return out.slice(0, max);
  }
  return out;
}
