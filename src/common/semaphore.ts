/** Raised by a semaphore whose waiting line is full. */
export class SemaphoreFullError extends Error {
  constructor() {
    super('too many operations are waiting');
    this.name = 'SemaphoreFullError';
  }
}

/**
 * Limits how many async operations run at once; the rest wait in FIFO order. With `maxWaiting`, an operation
 * that would have to wait behind that many others is refused at once (SemaphoreFullError) and never runs.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly maxWaiting = Infinity,
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active++;
    else if (this.waiting.length >= this.maxWaiting) throw new SemaphoreFullError();
    // A released slot is handed straight to the next waiter (active stays the same), so no newcomer can
    // slip in between and exceed the limit.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
