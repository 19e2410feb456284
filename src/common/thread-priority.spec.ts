import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { getPriority } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';

describe('lowerThreadPriority', { skip: process.platform !== 'linux' && 'Linux only (per-thread nice)' }, () => {
  it('lowers the calling worker thread only, not the process or its event loop thread', async () => {
    const before = getPriority(process.pid);
    const script = `
      const { parentPort } = require('node:worker_threads');
      const { readlinkSync } = require('node:fs');
      const { getPriority } = require('node:os');
      require(${JSON.stringify(path.join(__dirname, 'thread-priority.js'))}).lowerThreadPriority(7);
      const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
      parentPort.postMessage({ threadId, nice: getPriority(threadId) });`;
    const answer = await new Promise<{ threadId: number; nice: number }>((resolve, reject) => {
      const worker = new Worker(script, { eval: true });
      worker.once('message', (message) => void worker.terminate().then(() => resolve(message)));
      worker.once('error', reject);
    });
    assert.notEqual(answer.threadId, Number(readlinkSync('/proc/thread-self').split('/').pop()));
    assert.equal(answer.nice, 7, 'the worker thread runs at nice 7');
    assert.equal(getPriority(process.pid), before, "the main thread's priority is unchanged");
  });
});
