/**
 * Runs synchronous node:crypto work with stack capture off, and restores it before returning or throwing.
 *
 * Node.js asks of a key argument that is not itself a KeyObject (DER bytes, or an options object such as
 * `{ key, dsaEncoding }`) whether it is a KeyObject and whether it is a CryptoKey by calling code that throws for
 * anything else, and again of the object's `key`: two to four exceptions per call, each capturing a stack trace
 * (async frames included) that nobody reads. On the hot paths that is a third of createPublicKey's cost
 * (docs/benchmarks.md, "Issuance vs CFSSL", fifth session). An error the work itself throws has no stack: use it
 * only where the caller replaces or discards that error.
 */
export function stackless<T>(work: () => T): T {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return work();
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}
