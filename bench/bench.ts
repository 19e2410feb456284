/**
 * Benchmarks. Run with `npm run bench -- <name> [options]`:
 *   issuance [--backend local|aws-kms|pkcs11] [--sessions 4] [--count N] [--concurrency C] [--kms-latency-ms 20] [--kms-tps 300] [--db sqlite|postgres]
 *       Certificates issued per second through the HTTP API of the real service (its own process, SQLite:
 *       CSR checks, signing, insert + audit event in one transaction); this process is the client. local: reported against references measured in the same run (raw ECDSA P-256
 *       signatures per second; the X.509 work alone). aws-kms: the KMS stand-in runs in its own process with
 *       the given latency and token-bucket quota; reported as the fraction of that quota used, and failures.
 *   issuance --peer cfssl [--seconds 10] [--connections 32] [--threads 2] [--warmup-seconds 3] [--workers N]
 *       Ours (its own process; SQLite and, when FLEET_PKI_TEST_PG_URL is set, PostgreSQL on a fresh database; WORKERS=N
 *       passed to the PostgreSQL one when given) against `cfssl serve` (no database), the same wrk load, a distinct P-256
 *       CSR per request; interleaved in halves. Prints rates, p50/p99, errors, ours/cfssl, the service's RSS idle and
 *       peak per process, and checks every 201 is stored (audit per certificate, chain verifies). docs/benchmarks.md.
 *   exchange [--count N] [--concurrency C] [--warmup W] [--db sqlite|postgres] [--workers N]
 *       The factory exchange (POST /v1/provisioning/exchange) end to end over HTTP against the service in its own
 *       process (SQLite, local keys): each call signs a fresh x5c JWT (ES256) with the claim key, as a station does,
 *       for a distinct serial (and Idempotency-Key) with its own precomputed device CSR. Reports exchanges/s, p50/p95 latency and
 *       failures, against the plain POST /v1/certificates issuance rate measured in the same run over as many
 *       CSRs at the same concurrency (the two interleaved in quarters; W warm-up calls per path first, default 1000).
 *   provider [--count N] [--concurrency C] [--warmup W] [--db sqlite|postgres]
 *       The AWS IoT certificate provider path (docs/aws-fleet-provisioning.md): the Lambda handler in this process (API
 *       key read once from the secrets stand-in through the real Secrets Manager client) → POST
 *       /v1/provisioning/aws-certificate-provider → the claim's exchange and issuance in the service process. Reports
 *       calls/s, p50/p95/p99 and failures against plain POST /v1/certificates in the same run (interleaved in
 *       quarters; W warm-up calls per path, default 500); exits non-zero below 0.8× of it.
 *   issued-by [--rounds 300]
 *       What run-time chain validation (@peculiar/x509) adds to certificate authentication, in process: the JWT
 *       authentication work before it, a validation cache miss and a cache hit, per CA key type. docs/architecture.md.
 *   crl [--sizes 1000,10000,50000]
 *       Time to build and sign a CRL with n entries, per entry, to show it stays linear.
 *   ocsp [--certificates M] [--seconds S] [--warmup-seconds W] [--connections C] [--threads T] [--db sqlite|postgres] [--workers N]
 *       OCSP POST requests per second, each for a random one of M certificates the service issued (default 500), with
 *       a fresh nonce per request (always signed) and without (pre-signed answers), against the service (WORKERS=N,
 *       default the CPUs; PostgreSQL when FLEET_PKI_TEST_PG_URL is set, else SQLite with one process; local keys) and,
 *       in the same run with the same client (wrk, which must be installed), against `openssl ocsp -index -multi N`
 *       serving the same CA from an index.txt of the same serials with an openssl-made P-256 responder key, and a bare
 *       node:http cluster of N workers. The runs are interleaved in halves of S seconds (default 10) per mode; reports
 *       requests/s, p50/p99 latency, failures, ours/openssl and ours/bare; JSON in bench/results/ocsp-<time>.json.
 *   search [--rows 1000000] [--db postgres|sqlite] [--rounds 1500] [--concurrency 4] [--warmup 200]
 *       GET /v1/certificates over N stored certificates (PostgreSQL by default when FLEET_PKI_TEST_PG_URL is set, in a
 *       database of its own, dropped after): the service in its own process, CAs made through the API, the rows seeded
 *       with one INSERT … SELECT, then timed over HTTP with keep-alive: thing name, serial, status, status +
 *       expiringBefore (first and following pages through nextCursor), random stored keys; p50/p99 per kind against
 *       GET /healthz in the same run. See docs/benchmarks.md#search.
 *   manifest [--entries 100000] [--db sqlite|postgres] [--registration without-ca|none]
 *       A secure-element manifest import (docs/secure-elements.md): a test-made manifest of N entries streamed to
 *       POST /v1/manifests of the service in its own process, followed to the end; entries/s and the service's peak RSS
 *       (VmHWM; goal <= 300 MB). docs/benchmarks.md#manifest-import.
 * PostgreSQL runs need FLEET_PKI_TEST_PG_URL.
 */
import 'reflect-metadata';
import { crl } from './crl';
import { exchange } from './exchange';
import { issuance } from './issuance';
import { issuedBy } from './issued-by';
import { manifest } from './manifest';
import { ocsp } from './ocsp';
import { provider } from './provider';
import { search } from './search';

const benches: Record<string, () => Promise<void>> = { issuance, exchange, provider, crl, ocsp, search, 'issued-by': issuedBy, manifest };
const name = process.argv[2];
if (!benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]`);
  process.exit(2);
}
benches[name]().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
