import { invalid } from './iot-api';

// The input checks AWS IoT applies before an operation runs: InvalidRequestException when one fails.

export function requiredString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} is required`);
  if (value.length > 65536) throw invalid(`${field} is longer than 65536 characters`);
  return value;
}

export function optionalObject(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${field} must be an object`);
  return value as Record<string, unknown>;
}

export function optionalString(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > max) throw invalid(`${field} must be a string of at most ${max} characters`);
  return value;
}

export function booleanQuery(query: URLSearchParams, name: string): boolean | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (value !== 'true' && value !== 'false') throw invalid(`${name} must be true or false`);
  return value === 'true';
}

export function pageSizeQuery(query: URLSearchParams, name: string): number {
  const value = query.get(name);
  if (value === null) return 25;
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > 250) throw invalid(`${name} must be between 1 and 250`);
  return size;
}

/** One page of a list; the marker (next token) is the offset of the next page. */
export function page<T>(items: T[], size: number, marker: string | null): { items: T[]; next?: string } {
  let offset = 0;
  if (marker !== null) {
    offset = Number(Buffer.from(marker, 'base64url').toString('utf8'));
    if (!Number.isInteger(offset) || offset < 0) throw invalid('the marker is not valid');
  }
  const end = offset + size;
  return { items: items.slice(offset, end), next: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

export function certificateIdParam(raw: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) throw invalid(`certificateId ${raw} is not 64 hexadecimal characters`);
  return raw.toLowerCase();
}

export function thingNameParam(raw: string): string {
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(raw)) throw invalid(`thingName ${raw} must be 1 to 128 characters of [a-zA-Z0-9:_-]`);
  return raw;
}

export function thingTypeNameParam(raw: unknown): string {
  if (typeof raw !== 'string' || !/^[a-zA-Z0-9:_-]{1,128}$/.test(raw)) throw invalid(`thingTypeName ${String(raw)} must be 1 to 128 characters of [a-zA-Z0-9:_-]`);
  return raw;
}

export function thingGroupNameParam(raw: string): string {
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(raw)) throw invalid(`thingGroupName ${raw} must be 1 to 128 characters of [a-zA-Z0-9:_-]`);
  return raw;
}

export function policyNameParam(raw: string): string {
  if (!/^[\w+=,.@-]{1,128}$/.test(raw)) throw invalid(`policyName ${raw} must be 1 to 128 characters of [\\w+=,.@-]`);
  return raw;
}

export function jobIdParam(raw: string): string {
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(raw)) throw invalid(`jobId ${raw} must be 1 to 64 characters of [a-zA-Z0-9_-]`);
  return raw;
}

/** The `attributes` of an AttributePayload: names of 1 to 128 characters, string values of at most 800. */
export function attributeMap(payload: unknown, field: string): Record<string, string> {
  const attributes = optionalObject(optionalObject(payload, field).attributes, `${field}.attributes`);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.length === 0 || key.length > 128) throw invalid(`attribute name ${key} must be 1 to 128 characters`);
    if (typeof value !== 'string' || value.length > 800) throw invalid(`attribute ${key} must be a string of at most 800 characters`);
  }
  return { ...(attributes as Record<string, string>) };
}

export function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

export function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
