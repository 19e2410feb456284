/**
 * The CLI's exit codes (docs/cli.md). Scripts branch on them, so they are stable: a new failure kind gets a new
 * number, an existing one never changes meaning.
 */
export const EXIT = {
  /** The command did what it was asked. */
  OK: 0,
  /** The command line is wrong: unknown command or option, missing argument, unreadable input file, no URL or key. */
  USAGE: 1,
  /** The service refused the request (a 4xx problem: validation, authentication, permission, not found, conflict). */
  REFUSED: 2,
  /** The service failed (5xx) or could not be reached (connection refused, DNS, TLS, timeout). */
  SERVICE: 3,
  /** `audit verify`: the audit hash chain is broken. */
  AUDIT_CHAIN_BROKEN: 4,
  /** Ctrl-C stopped a bulk revocation (128 + SIGINT, as shells report it). */
  INTERRUPTED: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  usage: bad command line, unreadable file, no URL or API key
  2  the service refused the request (4xx: validation, authentication, permission, not found, conflict)
  3  the service failed (5xx) or could not be reached
  4  audit verify: the audit hash chain is broken
  130  interrupted (Ctrl-C during a bulk revocation; the summary says what was done)`;

/** A failure the CLI reports as one line (and a hint) and turns into an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint?: string,
    /** The service's problem code (e.g. CERTIFICATE_NOT_FOUND), when the service answered with one. */
    readonly code?: string,
  ) {
    super(message);
  }
}
