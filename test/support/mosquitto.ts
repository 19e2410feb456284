import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './free-port';

/**
 * A real Mosquitto broker with mutual TLS on 127.0.0.1 and a free port, so a test can show that a device
 * certificate from our CA connects and publishes, and is refused once the broker has a CRL that revokes it.
 *
 * Facts about mosquitto (2.0.x) this relies on:
 * - `cafile` must lead to a self-signed root: OpenSSL's partial-chain mode is not enabled, so a CA file holding
 *   only the issuing intermediate refuses every client. Put the intermediate(s) and the root in `caPem`.
 * - With `crlfile` set mosquitto turns on X509_V_FLAG_CRL_CHECK (leaf only, not CRL_CHECK_ALL): the file must
 *   hold a CRL from the leaf's issuer from the first start, or every client is refused ("unable to get
 *   certificate CRL"). The file must be PEM; a DER file stops the broker at start.
 * - mosquitto reads the CRL when it starts (and on SIGHUP); `restart` stops and starts it on the same port.
 * - `use_identity_as_username true` makes the certificate's CN the username, so `allow_anonymous false`
 *   still lets certificate-authenticated clients in.
 * - Running as root, mosquitto drops to user `mosquitto` unless told `user root`, and then cannot read the
 *   files in our 0700 temp directory.
 */
export interface BrokerTls {
  /** The broker's `cafile`: the chain that issues device certificates, up to and including the root. */
  caPem: string;
  /** The broker's `certfile` (leaf first, then any intermediates); give it SAN IP:127.0.0.1 / DNS:localhost. */
  serverCertPem: string;
  serverKeyPem: string;
  /** PEM CRL(s) for `crlfile` (concatenated); without it the broker does no revocation checks. */
  crlPem?: string;
  /** What mosquitto_pub trusts for the broker's certificate (`--cafile`); defaults to `caPem`. */
  serverCaPem?: string;
}

export interface PublishResult {
  /** True when the broker accepted the connection and acknowledged the QoS 1 publish (exit status 0). */
  ok: boolean;
  /** mosquitto_pub's stdout and stderr (e.g. "Error: Protocol error" when the broker refused the certificate). */
  output: string;
  exitCode: number | null;
  /**
   * What the broker logged during this publish. A refusal by the broker's certificate checks (revoked, unknown
   * issuer, missing CRL) shows "certificate verify failed"; without it the client gave up on its own (e.g. the
   * server certificate does not name 127.0.0.1: mosquitto_pub says "A TLS error occurred"). mosquitto_pub's
   * exit status and message for a refusal vary with timing (1 "Protocol error", 7 "The connection was lost").
   */
  brokerLog: string;
}

export interface Broker {
  port: number;
  /** The directory holding the config and PEM files. */
  dir: string;
  /**
   * Writes the new files and restarts the broker on the same port (mosquitto reads crlfile only at start).
   * Fields absent from `tls` keep their value; `crlPem: undefined` given explicitly drops the crlfile.
   */
  restart(tls: Partial<BrokerTls>): Promise<void>;
  /**
   * Publishes one message with mosquitto_pub over mutual TLS (QoS 1, so success means PUBACK). Resolves ok:false
   * when mosquitto_pub fails (TLS handshake or connection refused); rejects when mosquitto_pub times out or the
   * broker is not running, so a refusal is never confused with a dead broker.
   */
  publish(client: { certPem: string; keyPem: string; topic: string; message: string; timeoutMs?: number }): Promise<PublishResult>;
  /** Everything mosquitto logged (all of its runs), for assertions and diagnostics. */
  log(): string;
  /** SIGTERM, wait for exit, remove the temp directory. Safe to call twice. */
  stop(): Promise<void>;
}

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';

/** A skip reason when the mosquitto binaries are missing, else false (for `test(..., { skip })`). */
export function mosquittoSkip(): string | false {
  const missing = [MOSQUITTO, MOSQUITTO_PUB].filter((file) => !isExecutable(file));
  return missing.length ? `Mosquitto suite skipped: ${missing.join(', ')} not installed` : false;
}

export interface StartOptions {
  /** How long to wait for the port to accept connections (default 10 s). */
  startTimeoutMs?: number;
}

export async function startMosquitto(tls: BrokerTls, options: StartOptions = {}): Promise<Broker> {
  checkTls(tls);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-mosquitto-'));
  const broker = new MosquittoBroker(dir, tls, options.startTimeoutMs ?? 10_000);
  try {
    // Another process may take the free port between our probe and mosquitto's bind: pick another and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await broker.launch(await freePort());
        return broker;
      } catch (err) {
        if (!(err instanceof PortInUseError) || attempt >= 5) throw err;
      }
    }
  } catch (err) {
    await broker.stop();
    throw err;
  }
}

class PortInUseError extends Error {}

const LOG_LIMIT = 1_000_000;
const live = new Set<MosquittoBroker>();
let exitHookInstalled = false;

class MosquittoBroker implements Broker {
  port = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private logText = '';
  private stopped = false;

  constructor(
    readonly dir: string,
    private tls: BrokerTls,
    private readonly startTimeoutMs: number,
  ) {
    live.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      // A test that forgets stop() must not leave a broker running or key files behind.
      process.once('exit', () => {
        for (const b of live) b.kill();
      });
    }
  }

  log(): string {
    return this.logText;
  }

  async launch(port: number): Promise<void> {
    this.port = port;
    const config = this.writeFiles();
    const started = Date.now();
    this.appendLog(`--- fleet-pki: starting ${MOSQUITTO} on 127.0.0.1:${port} ---\n`);
    const logStart = this.logText.length;
    const child = spawn(MOSQUITTO, ['-c', config], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.appendLog(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.appendLog(chunk));
    // A running broker alone must not keep the test process alive (a forgotten stop() would hang the run;
    // the exit hook kills it instead). Waits on it (start, publish, stop) hold their own timers or children.
    child.unref();
    (child.stdout as unknown as net.Socket).unref();
    (child.stderr as unknown as net.Socket).unref();
    let spawnError: Error | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        resolve();
      });
      // 'close' (not 'exit') so the last log lines are in before anyone reads them.
      child.once('close', (code, signal) => {
        this.appendLog(`--- fleet-pki: mosquitto exited (${signal ?? `status ${code}`}) ---\n`);
        resolve();
      });
    });
    let exited = false;
    void this.exited.then(() => (exited = true));

    for (;;) {
      const alive = () => !exited && child.exitCode === null && child.signalCode === null;
      // mosquitto opens the socket before it loads the certificates (and exits if they are bad): ready means our
      // mosquitto is still up, logged "running" (all listeners set up) and the port accepts connections.
      if (alive() && /mosquitto version \S+ running/.test(this.logText.slice(logStart)) && (await canConnect(port))) {
        const ready = Date.now();
        // Let mosquitto log the end of our probe connection now rather than in the first publish's brokerLog.
        while (!/Client connection from .* failed|disconnected/.test(this.logText.slice(logStart)) && Date.now() - ready < 300) await sleep(10);
        if (alive()) {
          this.appendLog(`--- fleet-pki: listening after ${ready - started} ms ---\n`);
          return;
        }
      }
      if (!alive()) {
        await this.exited;
        this.child = undefined;
        if (spawnError) throw new Error(`could not run ${MOSQUITTO}: ${spawnError.message}`);
        if (/Address already in use/i.test(this.logText)) throw new PortInUseError(`port ${port} is in use:\n${this.logText}`);
        throw new Error(`mosquitto exited before listening on 127.0.0.1:${port}; its log:\n${this.logText}`);
      }
      if (Date.now() - started > this.startTimeoutMs) {
        await this.terminate();
        throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${this.startTimeoutMs} ms; its log:\n${this.logText}`);
      }
      await sleep(25);
    }
  }

  async restart(tls: Partial<BrokerTls>): Promise<void> {
    if (this.stopped) throw new Error('the broker was stopped');
    const next = { ...this.tls, ...tls };
    checkTls(next);
    this.tls = next;
    await this.terminate();
    await this.launch(this.port);
  }

  async publish(client: { certPem: string; keyPem: string; topic: string; message: string; timeoutMs?: number }): Promise<PublishResult> {
    this.assertRunning();
    const id = `pub-${randomBytes(6).toString('hex')}`;
    const certFile = this.write(`${id}.crt`, client.certPem);
    const keyFile = this.write(`${id}.key`, client.keyPem, 0o600);
    const args = [
      '-h', '127.0.0.1',
      '-p', String(this.port),
      '--cafile', path.join(this.dir, 'server-ca.pem'),
      '--cert', certFile,
      '--key', keyFile,
      '-t', client.topic,
      '-m', client.message,
      '-q', '1',
      '--id', id,
    ];
    const timeoutMs = client.timeoutMs ?? 10_000;
    const logStart = this.logText.length;
    try {
      const result = await new Promise<{ code: number | null; output: string; timedOut: boolean }>((resolve, reject) => {
        const child = spawn(MOSQUITTO_PUB, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        let timedOut = false;
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, timeoutMs);
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(new Error(`could not run ${MOSQUITTO_PUB}: ${err.message}`));
        });
        child.once('close', (code) => {
          clearTimeout(timer);
          resolve({ code, output, timedOut });
        });
      });
      if (result.timedOut) {
        throw new Error(`mosquitto_pub did not finish within ${timeoutMs} ms; its output:\n${result.output}\nbroker log:\n${this.logText}`);
      }
      // A refusal must come from the broker's TLS checks, not from a broker that died under us.
      if (result.code !== 0) this.assertRunning();
      // The broker's lines about this connection can trail the client's exit a little: wait for its last one.
      const settleUntil = Date.now() + 500;
      while (!/New connection from[^]*(disconnected|failed)/.test(this.logText.slice(logStart)) && Date.now() < settleUntil) await sleep(10);
      return { ok: result.code === 0, output: result.output, exitCode: result.code, brokerLog: this.logText.slice(logStart) };
    } finally {
      fs.rmSync(certFile, { force: true });
      fs.rmSync(keyFile, { force: true });
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.terminate();
    } finally {
      live.delete(this);
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /** Synchronous last resort for process exit. */
  kill(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async terminate(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await this.exited;
      clearTimeout(timer);
    } else {
      await this.exited;
    }
  }

  private assertRunning(): void {
    const child = this.child;
    if (this.stopped || !child || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the mosquitto broker is not running; its log:\n${this.logText}`);
    }
  }

  private writeFiles(): string {
    const { caPem, serverCertPem, serverKeyPem, crlPem, serverCaPem } = this.tls;
    const lines = [
      'per_listener_settings false',
      `listener ${this.port} 127.0.0.1`,
      `cafile ${this.write('ca.pem', caPem)}`,
      `certfile ${this.write('server.crt', serverCertPem)}`,
      `keyfile ${this.write('server.key', serverKeyPem, 0o600)}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      'persistence false',
      'log_dest stderr',
      'log_type all',
      'log_timestamp_format %H:%M:%S',
    ];
    this.write('server-ca.pem', serverCaPem ?? caPem);
    const crlFile = path.join(this.dir, 'crl.pem');
    if (crlPem !== undefined) lines.push(`crlfile ${this.write('crl.pem', crlPem)}`);
    else fs.rmSync(crlFile, { force: true });
    // As root mosquitto switches to user "mosquitto", which cannot read our 0700 directory.
    if (process.getuid?.() === 0) lines.push('user root');
    return this.write('mosquitto.conf', `${lines.join('\n')}\n`);
  }

  private write(name: string, content: string, mode = 0o644): string {
    const file = path.join(this.dir, name);
    fs.writeFileSync(file, content, { mode });
    fs.chmodSync(file, mode);
    return file;
  }

  private appendLog(chunk: string): void {
    if (this.logText.length < LOG_LIMIT) this.logText += chunk;
  }
}

function checkTls(tls: BrokerTls): void {
  if (tls.crlPem !== undefined && !tls.crlPem.includes('-----BEGIN X509 CRL-----')) {
    throw new Error('crlPem must hold PEM CRL(s) ("-----BEGIN X509 CRL-----"): mosquitto does not start with a DER crlfile');
  }
}


function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
