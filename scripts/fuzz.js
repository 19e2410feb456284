#!/usr/bin/env node
// Runs the fuzz suites (the *.fuzz.spec files and the fuzz e2e files) longer than `npm test` does, with a random
// seed that is printed so that a failure can be replayed (docs/fuzzing.md). After `npm run build`:
//   npm run fuzz                          # the CI budget, with a random seed
//   npm run fuzz -- --minutes 10          # about ten minutes per fuzz file, the files one after another
//   npm run fuzz -- --runs 20000          # that many cases per property
//   npm run fuzz -- --seed 123456 [--path 41:2:0]   # replay what a failure printed
//   npm run fuzz -- --minutes 5 parsers   # only files whose name contains "parsers"
// PostgreSQL too when FLEET_PKI_TEST_PG_URL is set, as for npm test.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dist = path.resolve(__dirname, '..', 'dist');

function usage(message) {
  if (message) console.error(`npm run fuzz: ${message}`);
  console.error('usage: npm run fuzz -- [--minutes N] [--runs N] [--seed N] [--path P] [file fragments…]');
  process.exit(2);
}

const options = {};
const fragments = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  const match = /^--(minutes|runs|seed|path)(?:=(.*))?$/.exec(arg);
  if (!match) {
    if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    fragments.push(arg);
    continue;
  }
  const value = match[2] ?? args[++i];
  if (value === undefined) usage(`--${match[1]} needs a value`);
  if (match[1] !== 'path' && !(Number(value) >= 0 && Number.isFinite(Number(value)))) usage(`--${match[1]} must be a non-negative number`);
  if (match[1] === 'seed' && !Number.isInteger(Number(value))) usage('--seed must be an integer');
  options[match[1]] = value;
}

function find(dir, test) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return find(full, test);
    return test(entry.name) ? [full] : [];
  });
}

let files = [
  ...find(path.join(dist, 'src'), (name) => name.endsWith('.fuzz.spec.js')),
  ...find(path.join(dist, 'test'), (name) => name.startsWith('fuzz-') && name.endsWith('.e2e.js') && !['fuzz-corpus.e2e.js', 'fuzz-regressions.e2e.js'].includes(name)),
].sort();
if (fragments.length) files = files.filter((file) => fragments.some((f) => file.includes(f)));
if (files.length === 0) usage('no fuzz files found (did the build run?)');

const seed = options.seed ?? String(Math.floor(Math.random() * 2 ** 31));
const env = { ...process.env, FUZZ_SEED: seed };
if (options.minutes !== undefined) env.FUZZ_MINUTES = options.minutes;
if (options.runs !== undefined) env.FUZZ_RUNS = options.runs;
if (options.path !== undefined) env.FUZZ_PATH = options.path;

console.log(`fuzz: seed ${seed}${options.minutes ? `, ${options.minutes} min per file` : ''}${options.runs ? `, ${options.runs} runs per property` : ''}; ${files.length} files`);
console.log(`fuzz: replay with  npm run fuzz -- --seed ${seed}${options.runs ? ` --runs ${options.runs}` : ''} <file>  (add --path from a failure to replay only its counterexample)`);
// One file at a time when running for minutes, so that the time budget means what it says on a small machine.
const concurrency = options.minutes !== undefined ? ['--test-concurrency=1'] : [];
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...concurrency, ...files], { stdio: 'inherit', env });
console.log(`fuzz: seed ${seed} — ${result.status === 0 ? 'no failure' : 'FAILED: keep the counterexample as a regression test (docs/fuzzing.md)'}`);
process.exit(result.status ?? 1);
