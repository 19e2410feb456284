#!/usr/bin/env node
// Generates the typed TypeScript client (clients/typescript/) from openapi.yaml with @hey-api/openapi-ts: an SDK
// function per operation (sdk.gen.ts), the request and response types (types.gen.ts) and a fetch client.
//   npm run client           regenerate clients/typescript/
//   npm run client:check     fail (exit 1) when the committed client is not what openapi.yaml produces (CI)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const spec = path.join(root, 'openapi.yaml');
const target = path.join(root, 'clients/typescript');

async function generate(output) {
  // @hey-api/openapi-ts is an ES module.
  const { createClient } = await import('@hey-api/openapi-ts');
  await createClient({ input: spec, output, plugins: ['@hey-api/client-fetch'], logs: { level: 'silent' } });
}

function files(dir, base = dir) {
  if (!fs.existsSync(dir)) return new Map();
  const out = new Map();
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) for (const [k, v] of files(full, base)) out.set(k, v);
    else out.set(path.relative(base, full), fs.readFileSync(full, 'utf8'));
  }
  return out;
}

async function main() {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-client-'));
  try {
    await generate(scratch);
    const fresh = files(scratch);
    if (process.argv.includes('--check')) {
      const committed = files(target);
      const differing = [...new Set([...fresh.keys(), ...committed.keys()])].filter((f) => fresh.get(f) !== committed.get(f));
      if (differing.length > 0) {
        console.error(`clients/typescript/ is out of date with openapi.yaml (${differing.join(', ')}): run \`npm run client\` and commit the result.`);
        process.exit(1);
      }
      console.log(`clients/typescript/ matches openapi.yaml (${fresh.size} files)`);
      return;
    }
    fs.rmSync(target, { recursive: true, force: true });
    fs.cpSync(scratch, target, { recursive: true });
    console.log(`wrote clients/typescript/ (${fresh.size} files)`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
