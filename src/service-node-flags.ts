/**
 * The Node.js flags the service runs with, wherever it is started: `npm start` (package.json), the container
 * (Dockerfile CMD) and the benchmarks (bench/support.ts). Cluster workers inherit them (cluster.fork passes the
 * primary's execArgv). src/service-node-flags.spec.ts fails when package.json or the Dockerfile drift from this list.
 *
 * `--max-semi-space-size=16` caps V8's young generation at 2 × 16 MB. By default V8 grows it to 2 × 64 MB under a
 * sustained load of short-lived objects (request bodies, parsed certificates), and that memory stays resident: a
 * 100,000-entry manifest import peaked at 355 MB RSS with the default, 256 MB with this flag, at about 90 % of the
 * import rate; idle RSS 213 → 176 MB (docs/runtime.md, "Memory").
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
