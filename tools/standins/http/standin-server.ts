import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { AwsError } from './aws-error';
import { WireProtocol } from './wire-protocols';

/** One AWS call as the stand-in received it. */
export interface AwsCall {
  /** The operation the request names; '' when it names none. */
  operation: string;
  request: http.IncomingMessage;
  url: URL;
  /** The body, as text. */
  raw: string;
}

/** A test hook under `/_standin/` (plain JSON, no SigV4): what it returns is answered as JSON with HTTP 200. */
export interface HookRoute {
  method: string;
  /** The whole path, or a pattern whose capture groups are handed to `handle`. */
  path: string | RegExp;
  handle(body: Record<string, unknown>, captures: string[]): unknown;
}

/** Return it from `StandInService.answer` to close the connection instead of answering (a lost answer). */
export const DROP_CONNECTION = Symbol('drop the connection');

/** What a stand-in supplies to the shared server: how it names and answers AWS calls, and its test hooks. */
export interface StandInService {
  readonly protocol: WireProtocol;
  readonly hooks: HookRoute[];
  /** Read on every call: added latency, and 'drop' to close the connection without an answer. */
  knobs(): { latencyMs: number; failureMode: string };
  /** The operation a call names ('' when none); it is counted in `calls` before anything can refuse it. */
  operationOf(request: http.IncomingMessage, url: URL): string;
  /** Told as a call arrives, before the added latency. */
  onCall?(operation: string, res: http.ServerResponse): void;
  /** The answer to a call, or DROP_CONNECTION; throws an AwsError to refuse it. */
  answer(call: AwsCall): unknown;
  /** What an unexpected exception (a bug, a body that is not JSON) is answered as. */
  internalError(err: unknown): AwsError;
}

/**
 * The HTTP side shared by the stand-ins: a loopback server; test hooks under `/_standin/` answered as plain JSON;
 * every other request an AWS call, counted by operation, delayed by the latency knob, dropped by the 'drop' failure
 * mode, then answered (or refused) in the service's wire protocol.
 */
export class StandInServer {
  /** Calls by operation, including refused ones (for tests and benchmarks). */
  readonly calls = new Map<string, number>();
  private server?: http.Server;

  constructor(private readonly service: StandInService) {}

  get endpoint(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/_standin/')) await this.answerHook(req.method ?? 'GET', url.pathname, raw, res);
    else await this.answerCall(req, url, raw, res);
  }

  private async answerCall(request: http.IncomingMessage, url: URL, raw: string, res: http.ServerResponse): Promise<void> {
    const { service } = this;
    const operation = service.operationOf(request, url);
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    service.onCall?.(operation, res);
    const { latencyMs } = service.knobs();
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    if (service.knobs().failureMode === 'drop') {
      request.socket.destroy();
      return;
    }
    try {
      const result = service.answer({ operation, request, url, raw });
      if (result === DROP_CONNECTION) request.socket.destroy();
      else service.protocol.answer(res, result);
    } catch (err) {
      service.protocol.error(res, err instanceof AwsError ? err : service.internalError(err));
    }
  }

  private async answerHook(method: string, path: string, raw: string, res: http.ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw || '{}') as Record<string, unknown>;
    } catch {
      reply(400, { message: 'the body is not JSON' });
      return;
    }
    for (const hook of this.service.hooks) {
      if (hook.method !== method) continue;
      const captures = typeof hook.path === 'string' ? (hook.path === path ? [] : undefined) : hook.path.exec(path)?.slice(1);
      if (!captures) continue;
      try {
        reply(200, await hook.handle(body, captures));
      } catch (err) {
        reply(err instanceof AwsError ? err.status : 500, { message: err instanceof Error ? err.message : String(err) });
      }
      return;
    }
    reply(404, { message: `no stand-in hook at ${method} ${path}` });
  }
}
