import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * Why a pooled task did not run to its end: its thread died under it (`crashed`), the waiting line was full
 * (`full`), or the pool was closed (`closed`). Every one of them is the service's trouble, never the request's.
 */
export class ThreadPoolError extends Error {
  constructor(
    readonly reason: 'crashed' | 'full' | 'closed',
    message: string,
  ) {
    super(message);
    this.name = 'ThreadPoolError';
  }
}

/** A task's own failure as its thread reported it (see `serveThreadTasks`): the thread lives on. */
export class ThreadTaskError extends Error {
  constructor(readonly payload: unknown) {
    super('the pooled task failed');
    this.name = 'ThreadTaskError';
  }
}

interface Job {
  id: number;
  request: unknown;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  running: Map<number, Job>;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: unknown };

/**
 * Tasks posted to a thread at once, so it never idles between the reply to one and the arrival of the next; more
 * would only move the waiting line into the thread, where a crash takes it along.
 */
const TASKS_PER_THREAD = 4;

/**
 * A fixed number of node:worker_threads running one script (docs/architecture.md, "Crypto threads"). Threads start
 * on first use and keep the process alive only while they hold tasks: an idle pool never does. A thread that dies
 * fails the tasks it held (ThreadPoolError 'crashed') and is replaced on the next task; tasks beyond what the threads
 * hold wait in a line of at most `maxWaiting`, and one more is refused at once ('full') instead of growing memory
 * without bound.
 */
export class ThreadPool<Request, Result> {
  private readonly threads: Thread[] = [];
  private readonly waiting: Job[] = [];
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly script: string,
    private readonly size: number,
    private readonly maxWaiting: number,
  ) {
    if (size < 1) throw new Error('a thread pool needs at least one thread');
  }

  run(request: Request): Promise<Result> {
    if (this.closed) return Promise.reject(new ThreadPoolError('closed', 'the thread pool is closed'));
    return new Promise<Result>((resolve, reject) => {
      const job: Job = { id: this.nextId++, request, resolve: resolve as (value: unknown) => void, reject };
      const thread = this.freeThread();
      if (thread) return this.post(thread, job);
      if (this.waiting.length >= this.maxWaiting) return reject(new ThreadPoolError('full', `${this.waiting.length} tasks are already waiting for a thread`));
      this.waiting.push(job);
    });
  }

  /** Stops every thread; tasks still running or waiting fail with ThreadPoolError 'closed'. */
  async close(): Promise<void> {
    this.closed = true;
    const failed = new ThreadPoolError('closed', 'the thread pool was closed');
    for (const job of this.waiting.splice(0)) job.reject(failed);
    const threads = this.threads.splice(0);
    for (const thread of threads) for (const job of thread.running.values()) job.reject(failed);
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  /** The least busy thread with room for one more task, starting one while there are fewer than `size`. */
  private freeThread(): Thread | undefined {
    let best: Thread | undefined;
    for (const thread of this.threads) if (!best || thread.running.size < best.running.size) best = thread;
    if (best && best.running.size === 0) return best;
    if (this.threads.length < this.size) return this.start();
    return best && best.running.size < TASKS_PER_THREAD ? best : undefined;
  }

  private start(): Thread {
    const worker = new Worker(this.script, { workerData: { threadPoolScript: this.script } });
    const thread: Thread = { worker, running: new Map() };
    worker.unref();
    worker.on('message', (reply: Reply) => this.settle(thread, reply));
    // 'error' (an uncaught exception in the thread) is followed by 'exit'; the listener keeps it from being rethrown here.
    worker.on('error', () => undefined);
    worker.on('exit', (code) => this.lost(thread, code));
    this.threads.push(thread);
    return thread;
  }

  private post(thread: Thread, job: Job): void {
    // A thread with tasks keeps the process alive until it answers them (Node 22 would otherwise end an event loop
    // that waits only for an unref'd thread); an idle one never does.
    if (thread.running.size === 0) thread.worker.ref();
    thread.running.set(job.id, job);
    thread.worker.postMessage({ id: job.id, request: job.request });
  }

  private settle(thread: Thread, reply: Reply): void {
    const job = thread.running.get(reply.id);
    if (!job) return;
    thread.running.delete(reply.id);
    if (thread.running.size === 0) thread.worker.unref();
    if (reply.ok) job.resolve(reply.value);
    else job.reject(new ThreadTaskError(reply.error));
    this.drain();
  }

  private lost(thread: Thread, code: number): void {
    const index = this.threads.indexOf(thread);
    if (index < 0) return; // closed: its tasks were failed by close()
    this.threads.splice(index, 1);
    const failed = new ThreadPoolError('crashed', `a worker thread exited (code ${code}) while running this task`);
    for (const job of thread.running.values()) job.reject(failed);
    thread.running.clear();
    this.drain();
  }

  private drain(): void {
    while (this.waiting.length) {
      const thread = this.freeThread();
      if (!thread) return;
      this.post(thread, this.waiting.shift()!);
    }
  }
}

/**
 * The thread side of a ThreadPool, called at the top of its script (`script` = that file's __filename): inside a
 * pool's thread for that script, answers each task with `handle`'s result, or with `describeError` of what it threw
 * (plain, cloneable data; the pool hands it back as ThreadTaskError.payload). Anywhere else (the main thread, another
 * thread that merely imports the module) it does nothing.
 */
export function serveThreadTasks<Request>(script: string, handle: (request: Request) => unknown, describeError: (error: unknown) => unknown): void {
  const port = parentPort;
  if (isMainThread || !port || (workerData as { threadPoolScript?: string } | null)?.threadPoolScript !== script) return;
  port.on('message', ({ id, request }: { id: number; request: Request }) => {
    let reply: Reply;
    try {
      reply = { id, ok: true, value: handle(request) };
    } catch (error) {
      reply = { id, ok: false, error: describeError(error) };
    }
    port.postMessage(reply);
  });
}
