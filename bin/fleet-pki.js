#!/usr/bin/env node
// The fleet-pki command (docs/cli.md): runs the compiled CLI in dist/cli/ (`npm run build` makes it).
'use strict';
const path = require('node:path');

let cli;
try {
  cli = require(path.join(__dirname, '..', 'dist', 'cli', 'main.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(path.join('dist', 'cli', 'main.js'))) {
    process.stderr.write('fleet-pki: the CLI is not built: run `npm run build` first\n');
    process.exit(1);
  }
  throw err;
}
cli.run(process.argv).then((code) => {
  process.exitCode = code;
});
