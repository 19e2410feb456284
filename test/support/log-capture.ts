import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ConsoleLogger, Logger, LogLevel } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { API_KEY_PATTERN } from '../../src/auth/api-key-secret';

/**
 * Log capture for the secret scan of a whole test run (scripts/run-tests.js, test/support/log-scan.ts). When
 * FLEET_PKI_TEST_LOG_DIR names a directory, every application a test starts writes every log line (all levels, whatever
 * LOG_LEVEL shows on the terminal) to `app-<pid>.log` there, spawned services' output goes to `child-<pid>-<n>.log`,
 * and every secret the tests create or are given is recorded in `secrets-<pid>.jsonl` (0600, removed with the
 * directory) for the scan to look for. Unset: nothing is captured or recorded.
 */
export const LOG_DIR_ENV = 'FLEET_PKI_TEST_LOG_DIR';
/** The kind of the secret planted once per process through the application's own logger: the scan must find it. */
export const CANARY_KIND = 'canary';

const ALL_LEVELS: LogLevel[] = ['verbose', 'debug', 'log', 'warn', 'error', 'fatal'];
const TERMINAL_LEVELS: Record<string, LogLevel[]> = {
  debug: ['debug', 'log', 'warn', 'error', 'fatal'],
  info: ['log', 'warn', 'error', 'fatal'],
  warn: ['warn', 'error', 'fatal'],
  error: ['error', 'fatal'],
  silent: [],
};

function logDir(): string | undefined {
  return process.env[LOG_DIR_ENV] || undefined;
}

const descriptors = new Map<string, number>();
function append(name: string, text: string): void {
  const dir = logDir();
  if (!dir) return;
  let fd = descriptors.get(name);
  if (fd === undefined) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fd = fs.openSync(path.join(dir, name), 'a', 0o600);
    descriptors.set(name, fd);
  }
  fs.writeSync(fd, text);
}

const recorded = new Set<string>();
/**
 * Records one secret for the scan (no-op without a capture directory, or for values too short to search for). A value
 * of fewer than four distinct characters is a test's filler (`'x'.repeat(129)` as an over-long password), not a
 * secret: any longer run of the same letters elsewhere in any log would match it.
 */
export function recordSecret(kind: string, value: string | undefined | null): void {
  if (!logDir() || typeof value !== 'string' || value.length < 8 || new Set(value).size < 4 || recorded.has(value)) return;
  recorded.add(value);
  append(`secrets-${process.pid}.jsonl`, JSON.stringify({ kind, value }) + '\n');
}

const SECRET_FIELD = /(password|passphrase|secret|pin|privateKey|masterKey)/i;

/** Records the secrets found in a request's or response's headers and JSON body (a structural walk). */
export function recordSecretsIn(headers: Record<string, unknown> | undefined, body: unknown): void {
  if (!logDir()) return;
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value !== 'string') continue;
    const lower = name.toLowerCase();
    if (lower === 'authorization') {
      const token = value.replace(/^Bearer\s+/i, '');
      recordSecret(API_KEY_PATTERN.test(token) ? 'api key' : token.startsWith('eyJ') ? 'jwt' : 'authorization', token);
    } else if (lower === 'x-pkcs12-password') recordSecret('pkcs12 password', value);
    else if (/secret|password/.test(lower)) recordSecret(`header ${lower}`, value);
  }
  walk(body, '');
}

function walk(value: unknown, field: string, depth = 0): void {
  if (depth > 8 || value === null || value === undefined) return;
  if (typeof value === 'string') {
    if (value.includes('PRIVATE KEY')) recordPrivateKey(value);
    else if (API_KEY_PATTERN.test(value)) recordSecret('api key', value);
    else if (SECRET_FIELD.test(field)) recordSecret(`field ${field}`, value);
    return;
  }
  if (Array.isArray(value)) for (const item of value.slice(0, 1000)) walk(item, field, depth + 1);
  else if (typeof value === 'object' && !Buffer.isBuffer(value)) for (const [key, item] of Object.entries(value)) walk(item, key, depth + 1);
}

/** A PEM private key, and each line of its body: a leaked fragment is found too. */
export function recordPrivateKey(pem: string): void {
  recordSecret('private key', pem.trim());
  for (const line of pem.split('\n')) if (/^[A-Za-z0-9+/=]{40,}$/.test(line.trim())) recordSecret('private key (line)', line.trim());
}

/**
 * The applications' logger while capturing: every level goes to this process's `app-<pid>.log`; the terminal still
 * shows only what the configured LOG_LEVEL shows (as the service's own logger would).
 */
class CapturingLogger extends ConsoleLogger {
  constructor(private readonly terminal: LogLevel[]) {
    super({ logLevels: ALL_LEVELS, colors: false });
  }

  protected override printMessages(messages: unknown[], context = '', logLevel: LogLevel = 'log', writeStreamType?: 'stdout' | 'stderr', errorStack?: unknown, params?: Record<string, unknown>): void {
    for (const message of messages) append(`app-${process.pid}.log`, `${new Date().toISOString()} ${logLevel} [${context}] ${this.stringifyMessage(message, logLevel)}\n`);
    if (typeof errorStack === 'string') append(`app-${process.pid}.log`, `${errorStack}\n`);
    if (this.terminal.includes(logLevel)) super.printMessages(messages, context, logLevel, writeStreamType, errorStack, params);
  }

  protected override printStackTrace(stack: string): void {
    if (this.terminal.includes('error')) super.printStackTrace(stack);
  }
}

const PINO_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
const PINO_THRESHOLD: Record<string, number> = { debug: 1, info: 2, warn: 3, error: 4, silent: PINO_LEVELS.length };

/**
 * The log output of an application started by createApp while capturing: it receives every pino line (all levels,
 * already through the service's redaction), appends each to `app-<pid>.log`, and shows on the terminal only what the
 * configured LOG_LEVEL shows (as the service would).
 */
export function capturingLogOutput(logLevel: string): { write(line: string): void } | undefined {
  if (!logDir()) return undefined;
  const threshold = PINO_THRESHOLD[logLevel] ?? PINO_THRESHOLD.info;
  return {
    write(line: string): void {
      append(`app-${process.pid}.log`, line);
      const level = /"level":"([a-z]+)"/.exec(line)?.[1] ?? 'info';
      if (PINO_LEVELS.indexOf(level) >= threshold) process.stdout.write(line);
    },
  };
}

let canaryPlanted = false;
/** The logger to start a Nest application context with (test/services), or undefined when not capturing. */
export function capturingLogger(logLevel: string): ConsoleLogger | undefined {
  if (!logDir()) return undefined;
  return new CapturingLogger(TERMINAL_LEVELS[logLevel] ?? TERMINAL_LEVELS.info);
}

/**
 * Once per process, after an application started: a fake secret logged through Nest's Logger (the path every service
 * logs through: pino, its redaction and the capture output for an app made by createApp) and recorded as the canary. The scan fails if it does not find it: proof it reads what was logged.
 */
export function plantCanary(): void {
  if (!logDir() || canaryPlanted) return;
  canaryPlanted = true;
  const canary = `fleet-pki-log-canary-${randomBytes(12).toString('hex')}`;
  recordSecret(CANARY_KIND, canary);
  new Logger('LogCapture').debug(`planted canary ${canary}`);
}

let children = 0;
/** Appends a spawned service's stdout and stderr to `child-<pid>-<n>.log`, and records the secrets its env gives it. */
export function captureChildOutput(child: ChildProcess, env: Record<string, string | undefined> = {}): void {
  if (!logDir()) return;
  for (const [name, value] of Object.entries(env)) if (value && /KEY|SECRET|PASSWORD|PIN/.test(name) && !/(_FILE|_DIR|^AWS_ACCESS_KEY_ID)$/.test(name)) recordSecret(`env ${name}`, value);
  const file = `child-${process.pid}-${++children}.log`;
  child.stdout?.on('data', (chunk: Buffer) => append(file, chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => append(file, chunk.toString()));
}
