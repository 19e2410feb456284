import { STATUS_CODES } from 'node:http';

/** An RFC 9457 problem body. `code` is our stable machine-readable error code. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [extra: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problem(status: number, code: string, detail: string, instance?: string, extra: Record<string, unknown> = {}): Problem {
  return {
    ...extra,
    type: `urn:fleet-pki:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    instance,
  };
}
