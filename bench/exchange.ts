import { createPrivateKey, randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { buildCsr } from '../tools/csr-builder';
import { pemDecode } from '../tools/clients/pem';
import { signX5cJwt } from '../tools/clients/station-jwt';
import { option, bearer, closedLoop, summary, startServiceProcess, writeResults, machineFacts, percentile, processTreeCpuSeconds } from './support';

/**
 * The factory exchange end to end: stations (this process) sign a fresh x5c JWT per call and POST a distinct
 * serial with its device CSR; the service (its own process, on SQLite or, with --db postgres, PostgreSQL; local
 * keys) authenticates the token (claim certificate lookup, signature, single-use jti), applies the claim (window,
 * pattern, quota, retry detection), issues, and records device, quota, idempotency key and audit in one transaction. Device CSRs are made before
 * the clock starts: that is the device's work, not the service's.
 */
export async function exchange(): Promise<void> {
  const count = Number(option('count', '2000'));
  const concurrency = Number(option('concurrency', '16'));
  const warmup = Number(option('warmup', '1000'));
  const db = option('db', 'sqlite');
  if (db !== 'sqlite' && db !== 'postgres') throw new Error('--db must be sqlite or postgres');
  if (db === 'postgres' && !process.env.FLEET_PKI_TEST_PG_URL) {
    console.error('--db postgres needs FLEET_PKI_TEST_PG_URL (a server on which the benchmark creates, and then drops, a database)');
    process.exit(2);
  }
  const workers = option('workers', '');
  if (workers && !/^[1-9][0-9]{0,2}$/.test(workers)) throw new Error('--workers must be a whole number from 1 to 999');
  // A fresh database of the driver (PostgreSQL: created on FLEET_PKI_TEST_PG_URL's server, dropped at the end).
  const service = await startServiceProcess(db, workers ? { WORKERS: workers } : {});
  const api = async (route: string, body: unknown, headers: Record<string, string>) => {
    const res = await fetch(`${service.baseUrl}${route}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const admin = async (route: string, body: unknown) => {
    const res = await api(route, body, bearer(service.adminKey));
    if (res.status !== 201) throw new Error(`${route}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: string; claimCertificate: { certificatePem: string; privateKeyPem: string } };
  };
  try {
    // Setup, not timed: a root, a claims CA, a device CA (local keys), and a claim with a generated P-256 key.
    const root = await admin('/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
    const claimCa = await admin('/v1/authorities', { name: 'Bench Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Bench Claims' } });
    const deviceCa = await admin('/v1/authorities', { name: 'Bench Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Devices' } });
    const claim = await admin('/v1/claims', {
      name: 'Bench', factory: 'Bench', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: warmup + count,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), serialPattern: 'BENCH[0-9]{7}', thingNameTemplate: 'bench-{serial}',
      claimCertificate: { generateKey: true },
    });
    const claimKey = createPrivateKey(claim.claimCertificate.privateKeyPem);
    const claimChain = [pemDecode(claim.claimCertificate.certificatePem, ['CERTIFICATE'])!];
    const audience = `${service.baseUrl}/v1/provisioning/exchange`;

    // Distinct device keys, serials and CSRs, made before timing; another set for the reference issuance.
    const serial = (i: number) => `BENCH${String(i).padStart(7, '0')}`;
    const exchangeCsrs = Array.from({ length: warmup + count }, (_, i) => buildCsr({ commonName: serial(i) }));
    const issuanceCsrs = Array.from({ length: warmup + count }, (_, i) => buildCsr({ commonName: `ref-${i}` }));

    const exchangeFailures: string[] = [];
    const exchangeOne = async (i: number) => {
      // The station's per-call work, timed: a single-use token (fresh jti) signed with the claim key.
      const now = Math.floor(Date.now() / 1000);
      const token = signX5cJwt({ alg: 'ES256', privateKey: claimKey, chainDer: claimChain, payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID(), sub: 'bench-station' } });
      // With an Idempotency-Key, as the example station sends by default.
      const res = await api('/v1/provisioning/exchange', { deviceSerial: serial(i), csr: exchangeCsrs[i] }, { Authorization: `Bearer ${token}`, 'Idempotency-Key': `station-${serial(i)}` }).catch(
        (err: Error) => ({ status: 0, body: { error: err.message } }),
      );
      if (res.status !== 201) exchangeFailures.push(`${serial(i)}: ${res.status} ${JSON.stringify(res.body)}`);
    };
    const issuanceFailures: string[] = [];
    const issueOne = async (i: number) => {
      const res = await api('/v1/certificates', { authorityId: deviceCa.id, csr: issuanceCsrs[i], profile: 'device', thingName: `ref-${i}` }, bearer(service.adminKey)).catch(
        (err: Error) => ({ status: 0, body: { error: err.message } }),
      );
      if (res.status !== 201) issuanceFailures.push(`${res.status} ${JSON.stringify(res.body)}`);
    };

    // Warm-up of both paths (JIT, connections, signer cache, prepared statements); not counted.
    await closedLoop(warmup, concurrency, (i) => issueOne(i));
    await closedLoop(warmup, concurrency, (i) => exchangeOne(i));
    const warmupFailures = { exchange: exchangeFailures.splice(0).length, issuance: issuanceFailures.splice(0).length };
    if (warmupFailures.exchange || warmupFailures.issuance) console.log(`  warm-up failures: ${JSON.stringify(warmupFailures)}`);

    // Timed in segments, in the order I E E I I E E I (I = issuance, E = exchange; each a quarter of --count), so a
    // drift during the run (a growing database, WAL checkpoints, a busy neighbour on the VM) weighs on both paths
    // alike. A path's rate is its count over the sum of its segments' times.
    type Run = { seconds: number; latenciesMs: number[] };
    const order: ('I' | 'E')[] = ['I', 'E', 'E', 'I', 'I', 'E', 'E', 'I'];
    const runs: Record<'I' | 'E', Run[]> = { I: [], E: [] };
    const segments: string[] = [];
    // The service's CPU seconds (its processes, workers included) per path: CPU per call moves far less than rates on
    // a shared VM, and the clients (this process) are not in it.
    const serviceCpu: Record<'I' | 'E', number> = { I: 0, E: 0 };
    for (const path of order) {
      const k = runs[path].length;
      const from = Math.floor((k * count) / 4);
      const to = Math.floor(((k + 1) * count) / 4);
      const cpuBefore = processTreeCpuSeconds(service.pid);
      const run = await closedLoop(to - from, concurrency, (i) => (path === 'I' ? issueOne(warmup + from + i) : exchangeOne(warmup + from + i)));
      serviceCpu[path] += processTreeCpuSeconds(service.pid) - cpuBefore;
      runs[path].push(run);
      segments.push(`${path} ${((to - from) / run.seconds).toFixed(0)}`);
    }
    const combine = (parts: Run[]): Run => ({ seconds: parts.reduce((sum, r) => sum + r.seconds, 0), latenciesMs: parts.flatMap((r) => r.latenciesMs) });

    console.log(`exchange benchmark: service process on ${db === 'sqlite' ? 'SQLite' : `PostgreSQL, WORKERS=${workers || '(service default)'}`}, local keys (EC P-256 CAs), ${concurrency} concurrent clients, ${warmup} warm-up calls per path not counted`);
    const issuanceRate = summary('  reference  POST /v1/certificates (API key)            ', count, combine(runs.I), issuanceFailures);
    const exchangeRate = summary('  exchange   POST /v1/provisioning/exchange (ES256 JWT) ', count, combine(runs.E), exchangeFailures);
    console.log(`  ratio exchange/issuance = ${(exchangeRate / issuanceRate).toFixed(3)}`);
    const cpuPerCallUs = { issuance: (serviceCpu.I / count) * 1e6, exchange: (serviceCpu.E / count) * 1e6 };
    console.log(
      `  service CPU per call: issuance ${cpuPerCallUs.issuance.toFixed(0)} µs, exchange ${cpuPerCallUs.exchange.toFixed(0)} µs; ` +
        `issuance/exchange = ${(cpuPerCallUs.issuance / cpuPerCallUs.exchange).toFixed(3)} (the ratio above if the service's CPU were all that limited it)`,
    );
    console.log(`  per segment, in run order (/s): ${segments.join(', ')}`);
    const after = await fetch(`${service.baseUrl}/v1/claims/${claim.id}`, { headers: bearer(service.adminKey) }).then((r) => r.json() as Promise<Record<string, number>>);
    const expected = warmup + count - exchangeFailures.length - warmupFailures.exchange;
    console.log(`  claim quota: used ${after.used} of ${after.maxDevices} (expected ${expected})`);
    const latency = (run: Run) => {
      const sorted = [...run.latenciesMs].sort((a, b) => a - b);
      return { p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95), p99Ms: percentile(sorted, 99) };
    };
    const file = writeResults('exchange', {
      benchmark: `exchange --db ${db}`,
      when: new Date().toISOString(),
      machine: machineFacts(),
      settings: { db, count, concurrency, warmup, workers: workers || null, order: order.join('') },
      issuance: { rate: issuanceRate, failures: issuanceFailures.length, ...latency(combine(runs.I)) },
      exchange: { rate: exchangeRate, failures: exchangeFailures.length, ...latency(combine(runs.E)) },
      ratioExchangeOverIssuance: exchangeRate / issuanceRate,
      serviceCpuPerCallUs: cpuPerCallUs,
      segments,
      warmupFailures,
      claimQuota: { used: after.used, expected },
    });
    console.log(`  results: ${path.relative(process.cwd(), file)}`);
    if (warmupFailures.exchange || warmupFailures.issuance || exchangeFailures.length || issuanceFailures.length || after.used !== expected) process.exitCode = 1;
  } finally {
    await service.stop();
  }
}
