import { captureChildOutput } from '../support/log-capture';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../support/free-port';

const root = path.resolve(__dirname, '../../..');

/** The README's quick-start block, exactly as a user would copy it. */
function quickstartScript(): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const match = /<!-- quickstart:begin -->\s*```bash\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme);
  assert.ok(match, 'README has a quickstart block');
  return match[1];
}


/**
 * Starts the built service the way the README does (no configuration but a free port, data under the
 * working directory), reads the admin key it prints, and runs the README quick start against it.
 */
describe('README quick start', () => {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-readme-'));
  let service: ChildProcess;
  let stdout = '';
  let port: number;

  before(async () => {
    port = await freePort();
    service = spawn(process.execPath, [path.join(root, 'dist/src/main.js')], {
      cwd: workDir,
      env: { PATH: process.env.PATH, HOME: workDir, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    captureChildOutput(service);
    service.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    service.stderr!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const started = Date.now();
    while (!/Authenticate with/.test(stdout)) {
      if (service.exitCode !== null) throw new Error(`service exited: ${stdout}`);
      if (Date.now() - started > 30_000) throw new Error(`service did not start: ${stdout}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(() => {
    service?.kill('SIGTERM');
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  it('prints where it listens and a one-time admin key, and keeps data under ./data', () => {
    assert.match(stdout, new RegExp(`listening on http://0\\.0\\.0\\.0:${port}`));
    assert.match(stdout, /Initial admin API key/);
    assert.ok(fs.existsSync(path.join(workDir, 'data', 'fleet-pki.sqlite')));
    assert.equal(fs.statSync(path.join(workDir, 'data', 'master.key')).mode & 0o777, 0o600);
  });

  it('runs the quick start: openssl verifies the device certificate, then reports it revoked', () => {
    const key = /(fpk_[0-9a-f]{12}\.[A-Za-z0-9_-]{43})/.exec(stdout)?.[1];
    assert.ok(key, 'admin key printed');
    const scratch = fs.mkdtempSync(path.join(workDir, 'qs-'));
    const result = spawnSync('bash', ['-euo', 'pipefail', '-c', quickstartScript()], {
      cwd: scratch,
      env: { PATH: process.env.PATH, FLEET_PKI_URL: `http://127.0.0.1:${port}`, FLEET_PKI_KEY: key },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    assert.equal(result.status, 0, output);
    assert.match(output, /^device\.pem: OK$/m);
    assert.match(output, /certificate revoked/);
    assert.match(output, /device\.pem is revoked, as expected/);
    assert.match(output, /"status":"revoked"/);
    assert.match(output, /"ok":true/);
  });
});
