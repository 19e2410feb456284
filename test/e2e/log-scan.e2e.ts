import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@nestjs/common';
import { CANARY_KIND, LOG_DIR_ENV, recordPrivateKey } from '../support/log-capture';
import { scanLogDirectory, verdict } from '../support/log-scan';
import { bearer, startTestApp, TestApp } from '../support/test-app';

// This file's applications log into a directory of its own: the scan is shown to find what a leak would look like.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-log-scan-'));
process.env[LOG_DIR_ENV] = dir;

/** The run's secret scan (scripts/run-tests.js) sees the applications' logs, finds leaks by file and line, never prints them. */
describe('secret scan of captured logs', () => {
  let t: TestApp;
  let apiKey: string;
  const leak = new Logger('LeakForTest');

  before(async () => {
    t = await startTestApp('sqlite');
    const res = await t.http().post('/v1/api-keys').set(bearer(t.adminKey)).send({ name: 'scan', role: 'auditor' });
    assert.equal(res.status, 201);
    apiKey = res.body.key;
  });
  after(async () => {
    await t?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('captures every level of the application logs and finds the planted canary; no finding in a clean run', async () => {
    // An unauthenticated call logs a warning (auth.guard.ts) that the terminal (LOG_LEVEL=error) does not show.
    assert.equal((await t.http().get('/v1/authorities').set(bearer('fpk_000000000000.wrong'))).status, 401);
    const report = scanLogDirectory(dir);
    assert.ok(report.bytes > 0 && report.lines > 0, 'logs were captured');
    assert.equal(report.canariesPlanted, 1);
    assert.equal(report.canaries, 1, 'the canary logged through Nest’s Logger is found');
    assert.ok(report.secrets >= 4, `admin key, API key, master key recorded (${report.secrets})`);
    assert.deepEqual(report.findings, []);
    assert.equal(verdict(report).ok, true);
    assert.match(fs.readFileSync(path.join(dir, `app-${process.pid}.log`), 'utf8'), /"level":"warn".*"context":"Auth","msg":"401 GET \/v1\/authorities/);
  });

  it('names file, line and kind of each leaked secret (API key, master key, private key fragment, JWT) without printing it', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    recordPrivateKey(pem);
    const masterHex = t.config.keys.masterKey?.toString('hex') ?? fs.readFileSync(t.config.keys.masterKeyFile, 'utf8').trim();
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzdGF0aW9uLTEifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';
    // Through the application's logger: API keys and JWTs are censored by its guard (logging/log-redaction.ts) and
    // never reach the log; the master key and a key fragment have no shape it knows, and the scan finds them.
    leak.debug(`api key ${apiKey}`);
    leak.warn(`master ${masterHex}`);
    leak.error(`key fragment ${pem.split('\n')[1]}`);
    leak.log(`token ${jwt}`);
    // A writer without that guard (a spawned tool's output): the scan finds the API key and the JWT too.
    const unguarded = path.join(dir, `unguarded-${process.pid}.log`);
    fs.writeFileSync(unguarded, `api key ${apiKey}\ntoken ${jwt}\n`);
    const report = scanLogDirectory(dir);
    const appFindings = report.findings.filter((f) => f.file === `app-${process.pid}.log`);
    assert.deepEqual(appFindings.map((f) => f.kind).sort(), ['master key (hex)', 'private key (line)'].sort());
    const lines = fs.readFileSync(path.join(dir, `app-${process.pid}.log`), 'utf8').split('\n');
    for (const finding of appFindings) assert.match(lines[finding.line - 1], /"context":"LeakForTest"/);
    assert.ok(lines.some((line) => line.includes('"context":"LeakForTest"') && line.includes('api key fpk_') && line.includes('[REDACTED]')), 'the API key was censored');
    const unguardedFindings = report.findings.filter((f) => f.file === `unguarded-${process.pid}.log`);
    assert.deepEqual(unguardedFindings.map((f) => `${f.line}: ${f.kind}`).sort(), ['1: API key', '1: api key', '2: JWT']);
    fs.rmSync(unguarded);
    const { ok, lines: printed } = verdict(report);
    assert.equal(ok, false);
    const text = printed.join('\n');
    for (const secret of [apiKey, masterHex, pem.split('\n')[1]]) assert.ok(!text.includes(secret), 'the verdict never prints a secret');
    assert.match(text, new RegExp(`SECRET IN LOG unguarded-${process.pid}\\.log:1: api key`));
  });

  it('fails when a planted canary is not in any log (a capture that sees nothing)', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-log-scan-empty-'));
    try {
      fs.writeFileSync(path.join(empty, 'secrets-1.jsonl'), JSON.stringify({ kind: CANARY_KIND, value: 'fleet-pki-log-canary-0123456789' }) + '\n');
      fs.writeFileSync(path.join(empty, 'app-1.log'), 'a line without it\n');
      const { ok, lines } = verdict(scanLogDirectory(empty));
      assert.equal(ok, false);
      assert.match(lines.join('\n'), /no captured log or no planted canary/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  it('allows only the documented one-time print of the initial admin key (src/main.ts), nowhere else', () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-log-scan-banner-'));
    try {
      const key = 'fpk_0123456789ab.' + 'A'.repeat(43);
      fs.writeFileSync(path.join(other, 'child-1-1.log'), `Initial admin API key (shown once, store it now):\n  ${key}\n\nlater ${key}\n`);
      const report = scanLogDirectory(other);
      assert.equal(report.allowed, 1);
      assert.deepEqual(report.findings, [{ file: 'child-1-1.log', line: 4, kind: 'API key' }]);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
