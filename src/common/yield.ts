/**
 * Cooperative scheduling for long jobs in the request process. better-sqlite3 is synchronous and parsing is CPU
 * work: a job that never gives the event loop a turn stalls every other request (liveness, OCSP) until it ends.
 */

/** Lets the event loop run once (timers, I/O, other requests) before continuing. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Yields to the event loop whenever at least `sliceMs` of work have passed since the last turn. */
export class TimeSlicer {
  private since = performance.now();

  constructor(private readonly sliceMs: number) {}

  async maybeYield(): Promise<void> {
    if (performance.now() - this.since < this.sliceMs) return;
    await yieldToEventLoop();
    this.since = performance.now();
  }
}
