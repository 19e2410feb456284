#!/usr/bin/env node
// `npm run build:lambdas` (docs/aws-deploy.md): bundles every AWS Lambda handler under integrations/aws-lambda/src/
// (each top-level *.ts file is one function; shared/ and other folders are only imported) with esbuild into one
// CommonJS file, and zips it as dist-lambdas/<name>.zip holding index.js (Lambda handler "index.handler").
//
// Target: Node 22 (the oldest Lambda runtime the deploy kit uses; the same bundle runs on nodejs24.x). The AWS SDK
// v3 clients (@aws-sdk/*) are provided by the Lambda Node runtime, so they stay external and out of the zip.
//
// Reproducible: the same sources and lockfile give byte-identical zips. esbuild's output is deterministic (paths in
// it are relative to the repository); the zip entry has a fixed DOS timestamp (no extended-time field, so neither
// the clock nor the time zone shows), fixed permissions and a single entry. dist-lambdas/SHA256SUMS lists the digests.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const sourceDir = path.join(root, 'integrations', 'aws-lambda', 'src');
const outDir = path.join(root, 'dist-lambdas');
/** Local-time components: yazl writes the DOS date from local time, so this is the same field in every time zone. */
const FIXED_MTIME = new Date(2020, 0, 1, 0, 0, 0);

function handlers() {
  if (!fs.existsSync(sourceDir)) return [];
  return fs
    .readdirSync(sourceDir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !/\.(spec|test)\.ts$/.test(entry.name))
    .map((entry) => entry.name.slice(0, -3))
    .sort();
}

async function bundle(name) {
  const esbuild = require('esbuild');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [path.join(sourceDir, `${name}.ts`)],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    write: false,
    outfile: 'index.js',
    legalComments: 'eof',
    keepNames: true,
    logLevel: 'warning',
    metafile: true,
  });
  const [output] = result.outputFiles;
  const inputs = Object.keys(result.metafile.inputs).sort();
  return { code: Buffer.from(output.contents), inputs };
}

function zip(code) {
  const yazl = require('yazl');
  const archive = new yazl.ZipFile();
  archive.addBuffer(code, 'index.js', { mtime: FIXED_MTIME, mode: 0o100644, compress: true, forceDosTimestamp: true });
  archive.end({ forceZip64Format: false });
  return new Promise((resolve, reject) => {
    const chunks = [];
    archive.outputStream.on('data', (chunk) => chunks.push(chunk));
    archive.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    archive.outputStream.on('error', reject);
  });
}

async function main() {
  const names = handlers();
  if (names.length === 0) throw new Error(`no handlers under ${path.relative(root, sourceDir)}`);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const sums = [];
  for (const name of names) {
    const { code, inputs } = await bundle(name);
    const bytes = await zip(code);
    const file = path.join(outDir, `${name}.zip`);
    fs.writeFileSync(file, bytes);
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    sums.push(`${digest}  ${name}.zip`);
    const external = inputs.filter((input) => input.startsWith('node_modules/')).length;
    console.log(`dist-lambdas/${name}.zip  ${bytes.length} bytes (index.js ${code.length} bytes, ${inputs.length} inputs, ${external} from node_modules)  sha256 ${digest}`);
  }
  fs.writeFileSync(path.join(outDir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
