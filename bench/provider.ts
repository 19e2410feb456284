import * as http from 'node:http';
import * as path from 'node:path';
import { buildCsr } from '../tools/csr-builder';
import { SecretsStandIn } from '../tools/standins';
import { handler as certificateProvider } from '../integrations/aws-lambda/src/certificate-provider';
import { setLogWriter } from '../integrations/aws-lambda/src/shared/logger';
import { option, bearer, closedLoop, summary, startServiceProcess, writeResults, machineFacts, percentile } from './support';

/**
 * The AWS IoT certificate provider path end to end (docs/aws-fleet-provisioning.md): the Lambda handler
 * (integrations/aws-lambda/src/certificate-provider.ts, run in this process as AWS would run it, its API key read once
 * through the real Secrets Manager client from the secrets stand-in) relays each CreateCertificateFromCsr event over
 * HTTP to the service in its own process (SQLite or PostgreSQL, local keys), which maps the principal to the claim,
 * reads the serial from the CSR and runs the claim's exchange (window, pattern, quota, idempotency on claim + CSR,
 * audit) and issues. Reference: plain POST /v1/certificates with an API key, in the same run at the same concurrency,
 * interleaved in quarters (I P P I I P P I). Device CSRs are made before the clock starts.
 */
export async function provider(): Promise<void> {
  const count = Number(option('count', '2000'));
  const concurrency = Number(option('concurrency', '16'));
  const warmup = Number(option('warmup', '500'));
  const db = option('db', 'sqlite');
  if (db !== 'sqlite' && db !== 'postgres') throw new Error('--db must be sqlite or postgres');
  if (db === 'postgres' && !process.env.FLEET_PKI_TEST_PG_URL) {
    console.error('--db postgres needs FLEET_PKI_TEST_PG_URL (a server on which the benchmark creates, and then drops, a database)');
    process.exit(2);
  }
  const service = await startServiceProcess(db);
  const secrets = await new SecretsStandIn().start();
  const api = async (route: string, body: unknown, headers: Record<string, string>) => {
    const res = await fetch(`${service.baseUrl}${route}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const admin = async (route: string, body: unknown) => {
    const res = await api(route, body, bearer(service.adminKey));
    if (res.status !== 201) throw new Error(`${route}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { id: string; key: string; claimCertificateId: string; claimCertificate: { certificatePem: string; fingerprint?: string } };
  };
  const quietLambda = setLogWriter(() => undefined);
  let agentToClose: http.Agent | undefined;
  try {
    // Setup, not timed: a root, a claims CA, a device CA (local keys), a claim, the integration's API key in the secret.
    const root = await admin('/v1/authorities', { name: 'Bench Root', type: 'root', subject: { commonName: 'Bench Root' } });
    const claimCa = await admin('/v1/authorities', { name: 'Bench Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Bench Claims' } });
    const deviceCa = await admin('/v1/authorities', { name: 'Bench Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Bench Devices' } });
    const claim = await admin('/v1/claims', {
      name: 'Bench', factory: 'Bench', claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: warmup + count,
      notAfter: new Date(Date.now() + 86_400_000).toISOString(), serialPattern: 'BENCH[0-9]{7}', thingNameTemplate: 'bench-{serial}',
      claimCertificate: { generateKey: true },
    });
    const claimCertificate = await fetch(`${service.baseUrl}/v1/certificates/${claim.claimCertificateId}`, { headers: bearer(service.adminKey) }).then((r) => r.json() as Promise<{ fingerprint: string }>);
    const integration = await admin('/v1/api-keys', { name: 'bench aws lambdas', role: 'aws-integration' });
    const secretArn = secrets.putSecret('bench/fleet-pki', JSON.stringify({ apiKey: integration.key }));
    Object.assign(process.env, {
      FLEET_PKI_URL: service.baseUrl,
      FLEET_PKI_API_KEY_SECRET_ID: secretArn,
      AWS_REGION: secrets.region,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'AKIAFLEETPKIBENCH000',
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'fleet-pki-bench-secret',
      AWS_EC2_METADATA_DISABLED: 'true',
    });

    const serial = (i: number) => `BENCH${String(i).padStart(7, '0')}`;
    const providerCsrs = Array.from({ length: warmup + count }, (_, i) => buildCsr({ commonName: serial(i) }));
    const issuanceCsrs = Array.from({ length: warmup + count }, (_, i) => buildCsr({ commonName: `ref-${i}` }));

    const providerFailures: string[] = [];
    const provideOne = async (i: number) => {
      try {
        const out = await certificateProvider({ certificateSigningRequest: providerCsrs[i], principalId: claimCertificate.fingerprint, clientId: serial(i) });
        if (!out.certificatePem.startsWith('-----BEGIN CERTIFICATE-----')) providerFailures.push(`${serial(i)}: no certificate`);
      } catch (err) {
        providerFailures.push(`${serial(i)}: ${(err as Error).message}`);
      }
    };
    // The reference goes through the same HTTP client as the handler (node:http, keep-alive), so the ratio compares the
    // two server paths, not two client libraries.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    agentToClose = agent;
    const postJson = (route: string, body: unknown, key: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const payload = Buffer.from(JSON.stringify(body));
        const req = http.request(`${service.baseUrl}${route}`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length, ...bearer(key) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        });
        req.on('error', reject);
        req.end(payload);
      });
    const issuanceFailures: string[] = [];
    const issueOne = async (i: number) => {
      const res = await postJson('/v1/certificates', { authorityId: deviceCa.id, csr: issuanceCsrs[i], profile: 'device', thingName: `ref-${i}` }, service.adminKey).catch(
        (err: Error) => ({ status: 0, text: err.message }),
      );
      if (res.status !== 201) issuanceFailures.push(`${res.status} ${res.text.slice(0, 300)}`);
    };

    await closedLoop(warmup, concurrency, (i) => issueOne(i));
    await closedLoop(warmup, concurrency, (i) => provideOne(i));
    const warmupFailures = { provider: providerFailures.splice(0).length, issuance: issuanceFailures.splice(0).length };
    if (warmupFailures.provider || warmupFailures.issuance) console.log(`  warm-up failures: ${JSON.stringify(warmupFailures)}`);

    type Run = { seconds: number; latenciesMs: number[] };
    const order: ('I' | 'P')[] = ['I', 'P', 'P', 'I', 'I', 'P', 'P', 'I'];
    const runs: Record<'I' | 'P', Run[]> = { I: [], P: [] };
    const segments: string[] = [];
    for (const kind of order) {
      const k = runs[kind].length;
      const from = Math.floor((k * count) / 4);
      const to = Math.floor(((k + 1) * count) / 4);
      const run = await closedLoop(to - from, concurrency, (i) => (kind === 'I' ? issueOne(warmup + from + i) : provideOne(warmup + from + i)));
      runs[kind].push(run);
      segments.push(`${kind} ${((to - from) / run.seconds).toFixed(0)}`);
    }
    const combine = (parts: Run[]): Run => ({ seconds: parts.reduce((sum, r) => sum + r.seconds, 0), latenciesMs: parts.flatMap((r) => r.latenciesMs) });
    const latency = (run: Run) => {
      const sorted = [...run.latenciesMs].sort((a, b) => a - b);
      return { p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95), p99Ms: percentile(sorted, 99) };
    };

    console.log(`provider benchmark: service process on ${db === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, local keys (EC P-256 CAs), ${concurrency} concurrent callers, ${warmup} warm-up calls per path not counted`);
    const issuanceRate = summary('  reference  POST /v1/certificates (API key)                        ', count, combine(runs.I), issuanceFailures);
    const providerRate = summary('  provider   Lambda handler → POST /v1/provisioning/aws-certificate-provider', count, combine(runs.P), providerFailures);
    const ratio = providerRate / issuanceRate;
    const p = latency(combine(runs.P));
    const r = latency(combine(runs.I));
    console.log(`  p99: provider ${p.p99Ms.toFixed(1)} ms, reference ${r.p99Ms.toFixed(1)} ms`);
    console.log(`  ratio provider/issuance = ${ratio.toFixed(3)} (goal >= 0.8)`);
    console.log(`  per segment, in run order (/s): ${segments.join(', ')}`);
    console.log(`  Secrets Manager reads: ${secrets.reads.get(secretArn) ?? 0} (the key is cached)`);
    const after = await fetch(`${service.baseUrl}/v1/claims/${claim.id}`, { headers: bearer(service.adminKey) }).then((res) => res.json() as Promise<Record<string, number>>);
    const expected = warmup + count - providerFailures.length - warmupFailures.provider;
    console.log(`  claim quota: used ${after.used} of ${after.maxDevices} (expected ${expected})`);
    const file = writeResults('provider', {
      benchmark: `provider --db ${db}`,
      when: new Date().toISOString(),
      machine: machineFacts(),
      settings: { db, count, concurrency, warmup, order: order.join('') },
      issuance: { rate: issuanceRate, failures: issuanceFailures.length, ...r },
      provider: { rate: providerRate, failures: providerFailures.length, ...p },
      ratioProviderOverIssuance: ratio,
      segments,
      warmupFailures,
      secretReads: secrets.reads.get(secretArn) ?? 0,
      claimQuota: { used: after.used, expected },
    });
    console.log(`  results: ${path.relative(process.cwd(), file)}`);
    if (warmupFailures.provider || warmupFailures.issuance || providerFailures.length || issuanceFailures.length || after.used !== expected || ratio < 0.8) process.exitCode = 1;
  } finally {
    setLogWriter(quietLambda);
    agentToClose?.destroy();
    await secrets.stop();
    await service.stop();
  }
}
