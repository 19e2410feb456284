#!/usr/bin/env node
// Runs the unit tests (dist/src/**/*.spec.js), the service tests (dist/test/**/*.service-test.js: the services on a
// real database, without HTTP) and the end-to-end tests (dist/test/**/*.e2e.js) with node's test runner, after
// `npm run build`. Pass file name fragments to run a subset, and --services for the service tests alone:
//   npm test -- lifecycle role-matrix
//   npm run test:services -- renewal
// Every file runs in a process of its own, except with --services: the service tests are independent of one another
// (each starts its own application context on its own database), so they share one process and load the
// application once, which halves their time.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dist = path.resolve(__dirname, '..', 'dist');
const PG_ENV = 'FLEET_PKI_TEST_PG_URL';

function find(dir, suffix) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return find(full, suffix);
    return entry.name.endsWith(suffix) ? [full] : [];
  });
}

/** The runner's flag for running every file in its own process no more (renamed in Node 23.6), when this Node has it. */
function oneProcess() {
  const flag = ['--test-isolation', '--experimental-test-isolation'].find((name) => process.allowedNodeEnvironmentFlags.has(name));
  return flag ? [`${flag}=none`] : [];
}

const SERVICE_TESTS = '.service-test.js';
const args = process.argv.slice(2);
const servicesOnly = args.includes('--services');
const filters = args.filter((arg) => arg !== '--services');
let files = servicesOnly
  ? find(path.join(dist, 'test'), SERVICE_TESTS).sort()
  : [...find(path.join(dist, 'src'), '.spec.js'), ...find(path.join(dist, 'test'), SERVICE_TESTS), ...find(path.join(dist, 'test'), '.e2e.js')].sort();
if (filters.length) files = files.filter((file) => filters.some((f) => file.includes(f)));
if (files.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}

if (!process.env[PG_ENV]) {
  console.log(`NOTE: ${PG_ENV} is not set: every PostgreSQL suite will be SKIPPED (SQLite suites still run).`);
  console.log(`      Set ${PG_ENV}=postgres://postgres@127.0.0.1:5432/postgres to run them.`);
}
/** The e2e files that plant no canary in the run's directory (no application in the test process — structured-logs.e2e
 * spawns the service, whose output is still scanned — or log-scan.e2e's own directory). */
const APPLESS = ['allowlist-migration.e2e', 'deploy-least-privilege.e2e', 'iam-policy.e2e', 'iot-standin.e2e', 'log-scan.e2e', 'structured-logs.e2e'];

// Every application the tests start logs (all levels) into this directory, and the tests record every secret they
// make or are given; after the run the directory is scanned for them (test/support/log-capture.ts, log-scan.ts).
const LOG_DIR_ENV = 'FLEET_PKI_TEST_LOG_DIR';
const logDir = process.env[LOG_DIR_ENV] || fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-test-logs-'));
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...(servicesOnly ? oneProcess() : []), ...files], {
  stdio: 'inherit',
  env: { ...process.env, [LOG_DIR_ENV]: logDir },
});
if (!process.env[PG_ENV]) console.log(`\nPostgreSQL suites were SKIPPED (${PG_ENV} not set).`);
const scanPassed = scanLogs(logDir, files);
if (!process.env[LOG_DIR_ENV]) fs.rmSync(logDir, { recursive: true, force: true });
process.exit(result.status === 0 && !scanPassed ? 1 : (result.status ?? 1));

/** The secret scan of the run's logs: prints the counts and each finding (file:line: kind, never the secret). */
function scanLogs(dir, ran) {
  const { scanLogDirectory, verdict } = require(path.join(dist, 'test/support/log-scan.js'));
  const report = scanLogDirectory(dir);
  const { ok, lines } = verdict(report);
  const startsApps = ran.some((file) => !file.endsWith('.spec.js') && !APPLESS.some((name) => file.includes(name)));
  // A failed run may have stopped before any application started; a passing one must have planted canaries.
  const wired = !startsApps || result.status !== 0 || report.canariesPlanted > 0;
  if (!wired) lines.push('  no test application planted its canary: the log capture is not wired (test/support/log-capture.ts)');
  console.log(`\n${lines.join('\n')}`);
  return ok && wired;
}
