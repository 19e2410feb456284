#!/usr/bin/env node
// Builds the static HTML API reference from openapi.yaml with @redocly/cli (Redoc 3): docs/api/index.html, one
// self-contained file (docs/api.md says how to read it and why it is not committed).
//   npm run docs:api             write docs/api/index.html
//   npm run docs:api -- --check  build into a scratch directory and check it (CI): nothing is written to docs/
// The Redoc scripts are embedded (--inlineBundle: no CDN at view time) and Redoc's telemetry is off. The page would
// still load Redocly's logo from its CDN, so a Content-Security-Policy is added that allows no network request at all
// (inline scripts and styles, data: images and fonts only); the check refuses any external script or stylesheet.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const redocly = path.join(root, 'node_modules/.bin/redocly');
const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:";

function build(output) {
  const result = spawnSync(
    redocly,
    ['build-docs', 'openapi.yaml', '--inlineBundle', '--openapi.disableTelemetry=true', '--title', 'Fleet PKI API reference', '-o', output],
    { cwd: root, encoding: 'utf8', env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } },
  );
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout}${result.stderr}`);
    throw new Error(`redocly build-docs failed (exit ${result.status})`);
  }
  const html = fs.readFileSync(output, 'utf8');
  const head = html.indexOf('<head>');
  if (head < 0) throw new Error('redocly build-docs wrote no <head>');
  const at = head + '<head>'.length;
  fs.writeFileSync(output, `${html.slice(0, at)}\n  <meta http-equiv="Content-Security-Policy" content="${CSP}">${html.slice(at)}`);
}

/** What would make the page depend on the network or on anything beside it. */
function problems(file) {
  const html = fs.readFileSync(file, 'utf8');
  const found = [];
  if (!html.includes(`content="${CSP}"`)) found.push('the Content-Security-Policy is missing');
  for (const m of html.matchAll(/<script\b[^>]*\bsrc\s*=\s*["']?([^"' >]+)/gi)) found.push(`a script loaded from ${m[1]}`);
  for (const m of html.matchAll(/<link\b[^>]*\bhref\s*=\s*["']?([^"' >]+)/gi)) found.push(`a link to ${m[1]}`);
  if (!html.includes('"disableTelemetry":true')) found.push('Redoc telemetry is not disabled');
  if (!html.includes('operationId') && !html.includes('issueCertificate')) found.push('the API description is not in the page');
  return found;
}

function main() {
  const check = process.argv.includes('--check');
  const dir = check ? fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-api-docs-')) : path.join(root, 'docs/api');
  const output = path.join(dir, 'index.html');
  try {
    fs.mkdirSync(dir, { recursive: true });
    build(output);
    const found = problems(output);
    if (found.length) {
      console.error(`API reference: ${found.join('; ')}`);
      process.exit(1);
    }
    const size = Math.round(fs.statSync(output).size / 1024);
    console.log(check ? `API reference builds from openapi.yaml, self-contained (${size} KiB)` : `wrote ${path.relative(root, output)} (${size} KiB)`);
  } finally {
    if (check) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
