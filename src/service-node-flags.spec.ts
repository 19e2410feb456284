import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { SERVICE_NODE_FLAGS } from './service-node-flags';

const root = path.resolve(__dirname, '..', '..');

describe('the service starts with SERVICE_NODE_FLAGS everywhere it is started', () => {
  it('npm start', () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.start, new RegExp(`node ${SERVICE_NODE_FLAGS.join(' ')} dist/src/main\\.js$`));
  });

  it('the container (Dockerfile CMD)', () => {
    const cmd = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8').split('\n').filter((line) => line.startsWith('CMD '));
    assert.deepEqual(cmd.length, 1);
    assert.deepEqual(JSON.parse(cmd[0].slice(4)), ['node', ...SERVICE_NODE_FLAGS, 'dist/src/main.js']);
  });

  it('the flags are ones this Node accepts', () => {
    // Started with them: Node refuses an unknown option (exit 9). Some V8 options are not allowed in NODE_OPTIONS,
    // so process.allowedNodeEnvironmentFlags cannot tell.
    const run = spawnSync(process.execPath, [...SERVICE_NODE_FLAGS, '-e', 'process.stdout.write("started")'], { encoding: 'utf8' });
    assert.equal(run.stderr, '');
    assert.equal(run.status, 0);
    assert.equal(run.stdout, 'started');
  });
});
