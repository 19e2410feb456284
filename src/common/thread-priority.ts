import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the scheduling priority of the calling thread only (Linux: nice is per thread; /proc/thread-self names the
 * thread's id). For a background worker thread (a CRL build, a WAL checkpoint) that must not take CPU from the event
 * loop answering requests when cores are scarce: it still runs whenever a core is free. Best effort: elsewhere, or
 * without /proc, nothing changes.
 */
export function lowerThreadPriority(nice = 10): void {
  try {
    const threadId = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(threadId) && threadId > 0) setPriority(threadId, nice);
  } catch {
    // Not Linux, no /proc, or not permitted: the thread keeps the process's priority.
  }
}
