import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { freePort } from '../free-port';
import { captureChildOutput } from '../log-capture';

const MAIN = path.resolve(__dirname, '../../../src/main.js');

/** One start of the service on fixed data (directory, database, keys); each start listens on a port of its own. */
export class ServiceUnderTest {
  child?: ChildProcess;
  baseUrl = '';
  log = '';
  private exited?: Promise<number | null>;

  constructor(
    private readonly env: Record<string, string>,
    readonly adminKey: string,
  ) {}

  /** Starts and waits until it listens; resolves to the exit code instead if it exits first (a refused setting). */
  async start(): Promise<number | undefined> {
    const port = await freePort();
    this.baseUrl = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', PUBLIC_BASE_URL: this.baseUrl, LOG_LEVEL: 'warn', FLEET_PKI_BOOTSTRAP_ADMIN_KEY: this.adminKey, ...this.env },
      // Its own process group: SIGKILL to the group reaches every process of the service at once.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    captureChildOutput(child, { FLEET_PKI_BOOTSTRAP_ADMIN_KEY: this.adminKey, ...this.env });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const onOutput = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    child.stderr!.on('data', onOutput);
    return new Promise<number | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service did not listen within 60 s:\n${this.log}`)), 60_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        onOutput(chunk);
        if (chunk.toString().includes('listening')) {
          clearTimeout(timer);
          resolve(undefined);
        }
      });
      void this.exited!.then((code) => {
        clearTimeout(timer);
        resolve(code ?? -1);
      });
    });
  }

  /** The processes of the service: the one started and its children (a cluster's workers). */
  processes(): number[] {
    const pid = this.child!.pid!;
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean).map(Number) ?? [];
    return [pid, ...children];
  }

  /** kill -9 of the whole process group; resolves when the process started is gone. */
  async kill9(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
    await this.exited;
    // Workers of a cluster are in the group too; give the kernel a moment to reap them before the data is reused.
    for (let i = 0; i < 50 && spawnSync('pgrep', ['-g', String(this.child.pid)]).status === 0; i++) await new Promise((r) => setTimeout(r, 100));
  }

  async request(method: string, route: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.baseUrl}${route}`, {
      method,
      headers: { Authorization: `Bearer ${this.adminKey}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async ok(method: string, route: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.request(method, route, body);
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${route}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Every item of a cursor-paged list. */
  async all(route: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    do {
      const page = await this.ok('GET', `${route}${route.includes('?') ? '&' : '?'}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...(page.items as Record<string, unknown>[]));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    return items;
  }
}
