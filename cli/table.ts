/** Plain aligned tables for human output (no colours, no box drawing: they paste well into tickets). */
export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

export function printTable<T>(rows: T[], columns: Column<T>[]): void {
  const cells = rows.map((row) => columns.map((c) => show(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i].length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]))).join('  ').trimEnd();
  process.stdout.write(`${line(columns.map((c) => c.header.toUpperCase()))}\n`);
  for (const r of cells) process.stdout.write(`${line(r)}\n`);
  if (rows.length === 0) process.stdout.write('(none)\n');
}

function show(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value);
}
