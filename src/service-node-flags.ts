/**
 * The Node.js flags the service runs with, wherever it is started: `npm start` (package.json), the container
 * (Dockerfile CMD) and the benchmarks (bench/support.ts). Cluster workers inherit them (cluster.fork passes the
 * primary's execArgv). src/service-node-flags.spec.ts fails when package.json or the Dockerfile drift from this list.
 *
 * `--max-semi-space-size=16` caps V8's young generation at 2 × 16 MB. By default V8 grows it to 2 × 64 MB under a
 * sustained load of short-lived objects (request bodies, parsed certificates), and that memory stays resident: a
 * 100,000-entry manifest import peaked at 355 MB RSS with the default, 256 MB with this flag, at about 90 % of the
 * import rate; idle RSS 213 → 176 MB (docs/runtime.md, "Memory").
 *
 * `--no-allocation-site-pretenuring` stops V8 from deciding, per allocation site, to create objects directly in the
 * old generation because many of them outlived a young collection. Under a sustained stream of requests that
 * heuristic fires on the sites of per-request objects (requests in flight when a collection runs): they then land in
 * the old generation as garbage, every young collection must scan them, and a full collection runs every second.
 * Measured under OCSP load on one process: with the heuristic, 21–26 young collections a second of ~5.5 ms each and
 * RSS 400 MB; with this flag ~70 of ~0.4 ms and RSS 183 MB, and answers/s +27–85 % (docs/runtime.md, "Memory"). It is
 * a V8 option that NODE_OPTIONS does not accept: it must be on the command line.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16', '--no-allocation-site-pretenuring'];
