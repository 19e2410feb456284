import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../support/free-port';
import { captureChildOutput, recordSecret } from '../support/log-capture';

const MAIN = path.resolve(__dirname, '../../src/main.js');

/** The service as operators run it (`node dist/src/main.js`), its stdout and stderr kept whole. */
class Service {
  child?: ChildProcess;
  output = '';
  baseUrl = '';
  readonly adminKey = `fpk_${randomBytes(6).toString('hex')}.${randomBytes(32).toString('base64url')}`;
  private readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-logs-'));

  constructor(private readonly env: Record<string, string>) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.baseUrl = `http://127.0.0.1:${port}`;
    const env = { PATH: process.env.PATH, HOME: this.dataDir, DATA_DIR: this.dataDir, PORT: String(port), HOST: '127.0.0.1', PUBLIC_BASE_URL: this.baseUrl, FLEET_PKI_BOOTSTRAP_ADMIN_KEY: this.adminKey, ...this.env };
    this.child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    captureChildOutput(this.child, env);
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    await this.waitFor(() => /Authenticate with/.test(this.output), 60_000, 'the service did not start');
  }

  async waitFor(ready: () => boolean, ms: number, what: string): Promise<void> {
    const started = Date.now();
    while (!ready()) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) throw new Error(`service exited: ${this.output}`);
      if (Date.now() - started > ms) throw new Error(`${what}:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  request(pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.baseUrl}${pathAndQuery}`, init);
  }

  /** The JSON lines of its output so far (the start-up banner is the only plain text, see docs/operations.md). */
  jsonLines(): Record<string, unknown>[] {
    return this.output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child!.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const BANNER = [/^Fleet PKI listening on /, /^Initial admin API key/, /^ {2}fpk_/, /^Authenticate with: /, /^$/];

/** A JWT-shaped token (a station's bearer token looks like this) and other secrets the tests send. */
function fakeJwt(): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ sub: 'station-7', jti: randomUUID() })}.${randomBytes(48).toString('base64url')}`;
}

describe('structured logs (the service process, LOG_FORMAT, LOG_LEVEL)', () => {
  describe('LOG_FORMAT=json (the default) at LOG_LEVEL=info, behind a trusted proxy', () => {
    const service = new Service({ LOG_LEVEL: 'info', TRUST_PROXY: '127.0.0.1' });
    const jwt = fakeJwt();
    const wrongKey = `fpk_${randomBytes(6).toString('hex')}.${randomBytes(32).toString('base64url')}`;
    const pkcs12Password = `p12-${randomBytes(12).toString('hex')}`;
    const bodySecret = `body-${randomBytes(12).toString('hex')}`;
    const querySecret = `query-${randomBytes(12).toString('hex')}`;
    const missingId = randomUUID();
    let keyId = '';
    let generatedId = '';

    before(async () => {
      for (const [kind, value] of [['jwt', jwt], ['api key', wrongKey], ['pkcs12 password', pkcs12Password], ['field secret', bodySecret], ['query secret', querySecret]]) recordSecret(kind, value);
      await service.start();
      const admin = { Authorization: `Bearer ${service.adminKey}` };

      const listed = await service.request(`/v1/api-keys?token=${querySecret}`, { headers: { ...admin, 'X-Request-Id': 'e2e-logs-1', 'X-Forwarded-For': '203.0.113.7' } });
      assert.equal(listed.status, 200);
      assert.equal(listed.headers.get('x-request-id'), 'e2e-logs-1');
      keyId = ((await listed.json()) as { items: { id: string }[] }).items[0].id;

      const missing = await service.request(`/v1/certificates/${missingId}`, { headers: { ...admin, 'X-Request-Id': 'bad id with spaces and a quote"' } });
      assert.equal(missing.status, 404);
      generatedId = missing.headers.get('x-request-id') ?? '';
      assert.match(generatedId, /^[0-9a-f-]{36}$/, 'an unusable X-Request-Id is replaced by a generated one');

      assert.equal((await service.request('/v1/authorities', { headers: { Authorization: `Bearer ${jwt}`, 'X-Request-Id': 'e2e-logs-jwt' } })).status, 401);
      assert.equal((await service.request('/v1/authorities', { headers: { Authorization: `Bearer ${wrongKey}`, 'X-Request-Id': 'e2e-logs-wrong-key', Cookie: `session=${bodySecret}` } })).status, 401);
      const est = await service.request('/.well-known/est/serverkeygen?format=p12', {
        method: 'POST',
        headers: { ...admin, 'X-Pkcs12-Password': pkcs12Password, 'Content-Type': 'application/pkcs10', 'X-Request-Id': 'e2e-logs-p12' },
        body: 'MIIB',
      });
      assert.ok(est.status >= 400, `serverkeygen without a valid CSR is refused (${est.status})`);
      const created = await service.request('/v1/authorities', {
        method: 'POST',
        headers: { ...admin, 'Content-Type': 'application/json', 'X-Request-Id': 'e2e-logs-body' },
        body: JSON.stringify({ name: 'x', privateKey: bodySecret, password: bodySecret }),
      });
      assert.equal(created.status, 400);
      assert.equal((await service.request('/healthz', { headers: { 'X-Request-Id': 'e2e-logs-probe' } })).status, 200);
      const ids = ['e2e-logs-1', generatedId, 'e2e-logs-jwt', 'e2e-logs-wrong-key', 'e2e-logs-p12', 'e2e-logs-body'];
      await service.waitFor(() => ids.every((id) => service.output.includes(`"requestId":"${id}","method"`)), 10_000, 'request lines missing');
    });
    after(() => service.stop());

    it('writes only JSON lines besides the start-up banner, each with a level, a time and a message', () => {
      for (const line of service.output.split('\n')) {
        if (line.startsWith('{')) {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          assert.ok(['info', 'warn', 'error', 'fatal'].includes(String(parsed.level)), line);
          assert.ok(!Number.isNaN(Date.parse(String(parsed.time))), line);
          assert.equal(typeof parsed.msg, 'string', line);
        } else assert.ok(BANNER.some((banner) => banner.test(line)), `a plain-text line that is not the banner: ${line}`);
      }
      assert.match(service.output, /Authenticate with: /);
    });

    it('logs one line per request: request id, method, route pattern, status, latency, actor id, client address', () => {
      const lines = service.jsonLines().filter((line) => line.requestId === 'e2e-logs-1' && line.method);
      assert.equal(lines.length, 1);
      const [line] = lines;
      assert.equal(line.msg, 'request completed');
      assert.equal(line.level, 'info');
      assert.equal(line.method, 'GET');
      assert.equal(line.route, '/v1/api-keys', 'the route pattern, without the query');
      assert.equal(line.status, 200);
      assert.equal(typeof line.latencyMs, 'number');
      assert.ok((line.latencyMs as number) >= 0);
      assert.equal(line.actorType, 'api-key');
      assert.equal(line.actorId, keyId);
      assert.equal(line.remoteAddress, '203.0.113.7', 'the client in front of the trusted proxy');
    });

    it('logs the route pattern, not the path with its id, and a generated id for an unusable X-Request-Id', () => {
      const line = service.jsonLines().find((l) => l.requestId === generatedId && l.method);
      assert.ok(line, 'the request line carries the generated id echoed in the response');
      assert.equal(line.route, '/v1/certificates/:id');
      assert.equal(line.status, 404);
      assert.ok(!service.output.includes(missingId), 'the certificate id in the path is not logged');
      assert.ok(!service.output.includes('bad id with spaces'));
    });

    it('names no actor for a refused credential, and gives lines logged during a request its id', () => {
      const request = service.jsonLines().find((l) => l.requestId === 'e2e-logs-jwt' && l.method);
      assert.equal(request?.status, 401);
      assert.equal(request?.actorId, null);
      const warning = service.jsonLines().find((l) => l.requestId === 'e2e-logs-jwt' && l.context === 'Auth');
      assert.equal(warning?.level, 'warn', 'the guard\'s 401 warning is in the request\'s context');
    });

    it('keeps health probes out of the info log (they are debug lines)', () => {
      assert.ok(!service.output.includes('e2e-logs-probe'));
    });

    it('never logs an Authorization header, a cookie, an API key, a JWT, a PKCS#12 password, a query or a body', () => {
      for (const secret of [service.adminKey, service.adminKey.split('.')[1], wrongKey.split('.')[1], jwt, jwt.split('.')[2], pkcs12Password, bodySecret, querySecret]) {
        assert.ok(!service.output.includes(secret), `a secret reached the log (${secret.slice(0, 6)}…)`);
      }
      assert.ok(!/authorization|cookie|pkcs12-password/i.test(service.jsonLines().map((l) => JSON.stringify(l)).join('\n')), 'no header is logged');
    });
  });

  describe('LOG_LEVEL=debug', () => {
    const service = new Service({ LOG_LEVEL: 'debug' });
    before(() => service.start());
    after(() => service.stop());

    it('adds the debug lines: a health probe\'s request line', async () => {
      assert.equal((await service.request('/healthz', { headers: { 'X-Request-Id': 'e2e-debug-probe' } })).status, 200);
      await service.waitFor(() => service.output.includes('"requestId":"e2e-debug-probe"'), 10_000, 'no probe line');
      const line = service.jsonLines().find((l) => l.requestId === 'e2e-debug-probe');
      assert.equal(line?.level, 'debug');
      assert.equal(line?.route, '/healthz');
    });
  });

  describe('LOG_FORMAT=pretty', () => {
    const service = new Service({ LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' });
    before(() => service.start());
    after(() => service.stop());

    it('prints human lines, not JSON, with the same facts and no secret', async () => {
      const res = await service.request('/v1/authorities', { headers: { Authorization: `Bearer ${service.adminKey}`, 'X-Request-Id': 'e2e-pretty-1' } });
      assert.equal(res.status, 200);
      await service.waitFor(() => service.output.includes('e2e-pretty-1'), 10_000, 'no request line');
      const line = service.output.split('\n').find((l) => l.includes('e2e-pretty-1'))!;
      assert.ok(!line.trimStart().startsWith('{'), line);
      assert.match(line, /INFO/);
      assert.match(line, /request completed/);
      assert.match(line, /\/v1\/authorities/);
      assert.ok(!service.output.includes(service.adminKey.split('.')[1]));
      assert.equal(service.jsonLines().length, 0, 'no JSON line at all');
    });
  });

  describe('LOG_LEVEL=warn', () => {
    const service = new Service({ LOG_LEVEL: 'warn' });
    before(() => service.start());
    after(() => service.stop());

    it('drops the info request lines and keeps warnings', async () => {
      assert.equal((await service.request('/v1/authorities', { headers: { Authorization: `Bearer ${service.adminKey}`, 'X-Request-Id': 'e2e-warn-ok' } })).status, 200);
      assert.equal((await service.request('/v1/authorities', { headers: { 'X-Request-Id': 'e2e-warn-401' } })).status, 401);
      await service.waitFor(() => service.output.includes('"requestId":"e2e-warn-401"'), 10_000, 'no warning');
      const lines = service.jsonLines();
      assert.ok(lines.every((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal'), JSON.stringify(lines));
      assert.ok(!service.output.includes('e2e-warn-ok'));
      assert.ok(lines.some((l) => l.requestId === 'e2e-warn-401' && l.context === 'Auth'));
    });
  });
});
