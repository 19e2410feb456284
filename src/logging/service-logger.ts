import pino, { DestinationStream, Logger as PinoInstance } from 'pino';
import pinoPretty from 'pino-pretty';
import { Logger as NestPinoLogger, Params, PinoLogger } from 'nestjs-pino';
import { REDACT_PATHS, CENSOR, scrubSecrets } from './log-redaction';

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFormat = 'json' | 'pretty';

/** Where finished (already scrubbed) JSON lines go instead of stdout: the tests' log capture takes every level. */
export interface LogOutput {
  write(line: string): void;
}

export interface LoggingOptions {
  level: LogLevelName;
  format: LogFormat;
  /** Replaces stdout; it then receives every level (it filters itself) and the format is JSON. */
  output?: LogOutput;
}

/**
 * One pino logger per process. nestjs-pino keeps a process-wide root logger and request middleware (built on first
 * use), so the root is one too: `configureLogging` (each createApp) sets its level and where its lines go, and the
 * newest application's settings govern the process — as Nest's own static Logger does. A process runs one
 * application, but the tests start many in one process.
 */
let sink: LogOutput = { write: (line: string) => void process.stdout.write(line) };
const guarded: DestinationStream = { write: (line: string) => sink.write(scrubSecrets(line)) };
const root: PinoInstance = pino(
  {
    level: 'info',
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    timestamp: pino.stdTimeFunctions.isoTime,
    // The level's name, not its number: readable, and what collectors map to severity.
    formatters: { level: (label) => ({ level: label }) },
  },
  guarded,
);

const outputs = new Map<LogFormat, LogOutput>();
function stdout(format: LogFormat): LogOutput {
  let output = outputs.get(format);
  if (!output) outputs.set(format, (output = openStdout(format)));
  return output;
}

/** Through process.stdout (synchronous for files and pipes on Linux), so lines keep their order with the banner. */
function openStdout(format: LogFormat): LogOutput {
  if (format === 'pretty') {
    return pinoPretty({ destination: process.stdout, colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  }
  return { write: (line: string) => void process.stdout.write(line) };
}

/** Sets the process logger up for an application (its level, format or output) and returns it. */
export function configureLogging(options: LoggingOptions): PinoInstance {
  root.level = options.output ? 'trace' : options.level;
  sink = options.output ?? stdout(options.format);
  return root;
}

/**
 * nestjs-pino's parameters: its root logger is ours. Its HTTP middleware (pino-http through Nest's middie) is not
 * mounted: under Fastify the context it opens does not reach the guards and handlers, so logging/request-log.ts
 * opens the request's logging context itself and writes the request's line.
 */
export function nestPinoParams(): Params {
  return { pinoHttp: { logger: root, autoLogging: false, quietReqLogger: true } };
}

/** Nest's start-up chatter (one line per module and route) is noise in an operator's log; warnings still show. */
const STARTUP_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication']);

/** The application logger: every `new Logger('…')` of src/ writes through it into pino. */
export class ServiceLogger extends NestPinoLogger {
  constructor(
    params: Params = nestPinoParams(),
    /** nestjs-pino's logger under this one: `runInContext` binds fields to every line of a request. */
    readonly pino: PinoLogger = new PinoLogger(params),
  ) {
    super(pino, params);
  }

  override log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams[optionalParams.length - 1];
    if (typeof context === 'string' && STARTUP_CONTEXTS.has(context)) return;
    super.log(message, ...optionalParams);
  }
}
