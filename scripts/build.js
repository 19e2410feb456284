#!/usr/bin/env node
// Compiles src/, clients/, cli/, migrations/, scripts/, tools/, test/, bench/ and examples/ to dist/ with SWC (legacy
// decorators + decorator metadata, which NestJS dependency injection needs), then bundles the ops console (console/)
// into dist/console with Vite. Type checking is separate: `npm run typecheck`.
'use strict';
const { transformFile } = require('@swc/core');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'dist');
const sourceDirs = ['src', 'clients', 'cli', 'migrations', 'scripts', 'tools', 'test', 'bench', 'examples', 'integrations'];

const swcOptions = {
  sourceMaps: 'inline',
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
};

function* typescriptFiles(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* typescriptFiles(full);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield full;
  }
}

async function main() {
  fs.rmSync(outDir, { recursive: true, force: true });
  const jobs = [];
  for (const dir of sourceDirs) {
    const abs = path.join(root, dir);
    if (!fs.existsSync(abs)) continue;
    for (const file of typescriptFiles(abs)) {
      const target = path.join(outDir, path.relative(root, file)).replace(/\.ts$/, '.js');
      jobs.push(
        transformFile(file, { ...swcOptions, filename: file }).then((out) => {
          fs.mkdirSync(path.dirname(target), { recursive: true });
          fs.writeFileSync(target, out.code);
        }),
      );
    }
  }
  await Promise.all(jobs);
  await buildConsole();
}

/**
 * The ops console (console/, docs/console.md): bundled by Vite into dist/console, which the service serves at
 * /console. Same sources, same output (hashed file names from the content), so the build is deterministic.
 */
async function buildConsole() {
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'console', 'vite.config.mjs'), logLevel: 'warn' });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
