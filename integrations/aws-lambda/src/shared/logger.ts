/**
 * One JSON line per event on stdout (what Lambda sends to CloudWatch Logs). Nothing secret is ever logged: the API
 * key is never passed here, and any field whose name suggests a secret is replaced before writing, as a second guard.
 * A CSR or certificate is logged by its SHA-256 only. See docs/aws-fleet-provisioning.md ("Logs").
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const SECRET_FIELD = /key|secret|token|password|authorization|credential/i;

let writer: (line: string) => void = (line) => process.stdout.write(`${line}\n`);

/** For tests: where log lines go (stdout by default). Returns the previous writer. */
export function setLogWriter(next: (line: string) => void): (line: string) => void {
  const previous = writer;
  writer = next;
  return previous;
}

function redacted(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) out[name] = SECRET_FIELD.test(name) ? '[redacted]' : value;
  return out;
}

export function log(level: LogLevel, handler: string, message: string, fields: Record<string, unknown> = {}): void {
  if (level === 'debug' && process.env.LOG_LEVEL !== 'debug') return;
  writer(JSON.stringify({ time: new Date().toISOString(), level, handler, message, ...redacted(fields) }));
}
