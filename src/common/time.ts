/** RFC 3339 with whole seconds, as certificate and CRL times are encoded. */
export function isoSeconds(date: Date): string {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();
}
