/**
 * What every command needs: the connection (URL and API key from the options or the environment), the output mode
 * (human tables or --json) and a way to call the generated client that turns a failure into a CliError.
 *
 * The API key is a secret: it is read from FLEET_PKI_KEY, a file (--key-file, FLEET_PKI_KEY_FILE) or, discouraged,
 * --key (which lands in shell history and `ps`); it is never printed, not even in errors.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { type Client, connect } from '../clients/fleet-pki-client';
import { CliError, EXIT } from './exit-codes';
import { failure } from './problems';
import { ProgressBar } from './progress';
import { printTable, type Column } from './table';

export interface GlobalOptions {
  url?: string;
  key?: string;
  keyFile?: string;
  json?: boolean;
  progress?: boolean;
}

/** What the generated SDK functions return without throwOnError. */
interface SdkResult<T> {
  data?: T;
  error?: unknown;
  response?: Response;
}

const MAX_ATTEMPTS = 5;
const MAX_RETRY_WAIT_S = 30;

/** Seconds to wait before retrying, when the answer says the request was refused for now (429, 503 + Retry-After). */
function retryAfter(response: Response | undefined): number | undefined {
  if (!response || (response.status !== 429 && response.status !== 503)) return undefined;
  const header = response.headers.get('Retry-After');
  if (header === null) return response.status === 429 ? 1 : undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(Math.ceil(seconds), MAX_RETRY_WAIT_S) : 1;
}

export class Context {
  private cached?: Client;

  constructor(
    readonly options: GlobalOptions,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  static of(command: Command): Context {
    return new Context(command.optsWithGlobals<GlobalOptions>());
  }

  get json(): boolean {
    return this.options.json === true;
  }

  get baseUrl(): string {
    const url = this.options.url ?? this.env.FLEET_PKI_URL;
    if (!url) throw new CliError('no service URL', EXIT.USAGE, 'pass --url https://pki.example.com or set FLEET_PKI_URL');
    if (!/^https?:\/\/[^/]/.test(url)) throw new CliError(`the service URL "${url}" is not an http(s) URL`, EXIT.USAGE, 'e.g. --url http://127.0.0.1:8080');
    return url.replace(/\/+$/, '');
  }

  private apiKey(): string {
    if (this.options.key !== undefined) return this.options.key.trim();
    const file = this.options.keyFile ?? this.env.FLEET_PKI_KEY_FILE;
    if (file !== undefined) {
      try {
        return (file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8')).trim();
      } catch (err) {
        throw new CliError(`cannot read the API key file ${file} (${(err as NodeJS.ErrnoException).code ?? err})`, EXIT.USAGE);
      }
    }
    const key = this.env.FLEET_PKI_KEY?.trim();
    if (!key) throw new CliError('no API key', EXIT.USAGE, 'set FLEET_PKI_KEY or pass --key-file <file> (a file holding the key)');
    return key;
  }

  get client(): Client {
    this.cached ??= connect({ baseUrl: this.baseUrl, apiKey: this.apiKey() });
    return this.cached;
  }

  /**
   * Makes an SDK call; its data, or a CliError (exit 2 for a 4xx, 3 for a 5xx or an unreachable service). A 429, or
   * a 503 with Retry-After (e.g. ALLOWLIST_UPLOADS_BUSY), was refused before anything happened, so the call is made
   * again after the wait the service asks for (at most MAX_RETRY_WAIT_S a time, MAX_ATTEMPTS in all).
   */
  async call<T>(attempt: () => Promise<SdkResult<T>>): Promise<T> {
    for (let n = 1; ; n++) {
      const result = await attempt();
      if (result.error === undefined && result.response?.ok) return result.data as T;
      const wait = retryAfter(result.response);
      if (wait === undefined || n >= MAX_ATTEMPTS) throw failure(result.error, result.response, this.baseUrl);
      if (!this.json) process.stderr.write(`fleet-pki: the service asks to wait (HTTP ${result.response!.status}): retrying in ${wait} s\n`);
      await sleep(wait * 1000);
    }
  }

  /** Prints `value` as JSON (with --json) or the table/fields the command chose. */
  print(value: unknown, human: () => void): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    else human();
  }

  table<T>(rows: T[], columns: Column<T>[]): void {
    printTable(rows, columns);
  }

  /** Human-only lines (never with --json, so stdout stays one JSON document). */
  say(line: string): void {
    if (!this.json) process.stdout.write(`${line}\n`);
  }

  /** A progress bar on stderr: shown on a terminal, forced with --progress, hidden with --no-progress. */
  progress(label: string, total: number, unit = ''): ProgressBar {
    const enabled = this.options.progress ?? process.stderr.isTTY === true;
    return new ProgressBar(label, total, unit, enabled);
  }
}

/** Reads a file the user named, or stdin for "-"; a missing file is a usage error that names it. */
export function readInput(file: string, what: string): string {
  try {
    return file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${what} from ${file} (${(err as NodeJS.ErrnoException).code ?? err})`, EXIT.USAGE);
  }
}

/** Prints a record as aligned "field: value" lines. */
export function printFields(fields: [string, unknown][]): void {
  const width = Math.max(...fields.map(([name]) => name.length));
  for (const [name, value] of fields) {
    process.stdout.write(`${`${name}:`.padEnd(width + 2)}${value === null || value === undefined || value === '' ? '-' : String(value)}\n`);
  }
}
