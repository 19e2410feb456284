import * as net from 'node:net';

/**
 * A hostile client for test/e2e/abuse.e2e.ts, run as a child process so that its sockets use its own file descriptors:
 * opens `idle` connections that never send a byte and `slow` connections that trickle a header line every `trickleMs`
 * and never finish their request (slow-loris), from `localAddress`, then reports on stdout (JSON lines):
 *   {"opened": n, "refused": r}          once every connection was attempted (refused = closed before it opened)
 *   {"closed": c, "answered408": a, "stillOpen": o, "lastCloseMs": ms}   once all are closed, or after `holdMs`
 * Times are from the moment every connection was open.
 *   node connection-flood.js <port> <idle> <slow> <localAddress> <trickleMs> <holdMs>
 */
interface Flood {
  port: number;
  idle: number;
  slow: number;
  localAddress: string;
  trickleMs: number;
  holdMs: number;
}

function run({ port, idle, slow, localAddress, trickleMs, holdMs }: Flood): void {
  const sockets: { socket: net.Socket; closedAt?: number; got408: boolean }[] = [];
  let refused = 0;
  let openedAt = 0;
  const report = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

  const open = (kind: 'idle' | 'slow'): Promise<void> =>
    new Promise((resolve) => {
      const entry = { socket: net.connect({ port, host: '127.0.0.1', localAddress }), got408: false } as (typeof sockets)[number];
      sockets.push(entry);
      let connected = false;
      entry.socket.on('connect', () => {
        connected = true;
        if (kind === 'slow') {
          entry.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
          const timer = setInterval(() => entry.socket.writable && entry.socket.write(`X-Slow: ${Date.now()}\r\n`), trickleMs);
          entry.socket.once('close', () => clearInterval(timer));
        }
        resolve();
      });
      entry.socket.on('data', (chunk: Buffer) => {
        if (chunk.toString('latin1').startsWith('HTTP/1.1 408')) entry.got408 = true;
      });
      entry.socket.on('error', () => undefined);
      entry.socket.on('close', () => {
        entry.closedAt = Date.now();
        if (!connected) {
          refused++;
          resolve();
        }
      });
    });

  void (async () => {
    const kinds = [...Array<'idle'>(idle).fill('idle'), ...Array<'slow'>(slow).fill('slow')];
    // In batches, so the server's listen backlog is not what refuses them.
    for (let i = 0; i < kinds.length; i += 250) await Promise.all(kinds.slice(i, i + 250).map(open));
    openedAt = Date.now();
    report({ opened: sockets.length - refused, refused });
    const deadline = openedAt + holdMs;
    const timer = setInterval(() => {
      const open = sockets.filter((entry) => entry.closedAt === undefined).length;
      if (open > 0 && Date.now() < deadline) return;
      clearInterval(timer);
      const closedAfterOpen = sockets.filter((entry) => entry.closedAt !== undefined && entry.closedAt >= openedAt);
      report({
        closed: sockets.length - open - refused,
        answered408: sockets.filter((entry) => entry.got408).length,
        stillOpen: open,
        lastCloseMs: closedAfterOpen.length ? Math.max(...closedAfterOpen.map((entry) => entry.closedAt! - openedAt)) : 0,
      });
      for (const entry of sockets) entry.socket.destroy();
      process.exit(0);
    }, 50);
  })();
}

if (require.main === module) {
  const [port, idle, slow, localAddress, trickleMs, holdMs] = process.argv.slice(2);
  run({ port: Number(port), idle: Number(idle), slow: Number(slow), localAddress, trickleMs: Number(trickleMs), holdMs: Number(holdMs) });
}
