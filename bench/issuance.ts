import { generateKeyPairSync, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { signCertificate } from '../src/pki/certificate';
import { parseCsr } from '../src/pki/csr';
import { basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../src/pki/extensions';
import { randomSerial } from '../src/pki/serial';
import { buildCsr } from '../tools/csr-builder';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';
import { option, bearer, referenceSignaturesPerSecond, startKmsStandIn, startService } from './support';

export async function issuance(): Promise<void> {
  const backend = option('backend', 'local') as 'local' | 'aws-kms';
  const kmsTps = Number(option('kms-tps', '300'));
  const kmsLatency = Number(option('kms-latency-ms', '20'));
  const count = Number(option('count', backend === 'aws-kms' ? String(kmsTps * 10) : '2000'));
  const concurrency = Number(option('concurrency', '32'));
  const kms = backend === 'aws-kms' ? await startKmsStandIn(kmsLatency, kmsTps) : undefined;
  const service = await startService(
    kms
      ? {
          AWS_REGION: 'us-east-1',
          AWS_ENDPOINT_URL_KMS: kms.endpoint,
          AWS_ACCESS_KEY_ID: 'bench',
          AWS_SECRET_ACCESS_KEY: 'bench',
          AWS_EC2_METADATA_DISABLED: 'true',
          KMS_RETRY_MODE: option('retry-mode', 'adaptive'),
          // The service's share of the quota (the whole of it here: one replica); 0 = unpaced.
          KMS_MAX_SIGN_RATE: option('kms-max-sign-rate', String(kmsTps)),
        }
      : {},
  );
  const api = async (route: string, body: unknown) => {
    const res = await fetch(`${service.baseUrl}${route}`, {
      method: 'POST',
      headers: { ...bearer(service.adminKey), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  try {
    const root = await api('/v1/authorities', { name: 'Bench Root', type: 'root', keyBackend: backend, subject: { commonName: 'Bench Root' } });
    const ca = await api('/v1/authorities', { name: 'Bench Issuing', type: 'intermediate', parentId: root.body.id, keyBackend: backend, subject: { commonName: 'Bench Issuing' } });
    if (ca.status !== 201) throw new Error(`could not create the CA: ${JSON.stringify(ca.body)}`);
    const csrs = Array.from({ length: count }, (_, i) => buildCsr({ commonName: `bench-${i}` }));
    const failures: string[] = [];
    const issueOne = async (i: number) => {
      const res = await api('/v1/certificates', { authorityId: ca.body.id, csr: csrs[i], profile: 'device', thingName: `bench-${i}` });
      if (res.status !== 201) failures.push(`${res.status} ${JSON.stringify(res.body)}`);
    };
    // Warm-up: JIT, connection pools, signer cache (and, for KMS, the stand-in's initial burst allowance).
    const warmup = backend === 'aws-kms' ? Math.min(kmsTps, Math.floor(count / 5)) : 200;
    let next = 0;
    const run = async (until: number) => {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < until) await issueOne(next++);
        }),
      );
    };
    await run(warmup);
    const statsBefore = kms ? await kms.stats() : undefined;
    const started = performance.now();
    await run(count);
    const seconds = (performance.now() - started) / 1000;
    const measured = count - warmup;
    const rate = measured / seconds;
    console.log(`issuance (service process on SQLite, ${backend} keys, ${concurrency} concurrent clients): ${measured} certificates in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} certificates/s, ${failures.length} failed`);
    for (const failure of failures.slice(0, 3)) console.log(`  failure: ${failure.slice(0, 200)}`);
    if (kms) {
      const after = await kms.stats();
      const throttled = after.throttled - (statsBefore?.throttled ?? 0);
      const signs = (after.calls.Sign ?? 0) - (statsBefore?.calls.Sign ?? 0);
      // The most the quota allowed in the window: the sustained rate for its duration plus whatever was left in
      // the bucket when it opened. Signatures used / that = the fraction of the quota the service managed to use.
      const allowed = kmsTps * seconds + (statsBefore?.tokens ?? 0);
      console.log(`KMS stand-in: quota ${kmsTps} TPS (token bucket, 1 s burst), latency ${kmsLatency} ms; ${signs} Sign calls, ${throttled} throttled (retried by the SDK)`);
      console.log(`fraction of the KMS quota used = ${rate.toFixed(0)} / ${kmsTps} TPS = ${(rate / kmsTps).toFixed(3)} (goal >= 0.95 with 0 failed)`);
      console.log(`  (counting the stand-in's unused initial 1 s burst as well: ${measured} / ${allowed.toFixed(0)} allowed = ${(measured / allowed).toFixed(3)})`);
    } else {
      const reference = referenceSignaturesPerSecond();
      const pkiOnly = await pkiOnlyPerSecond(csrs.slice(0, 400));
      console.log(`reference: raw ECDSA P-256 signatures (node:crypto, one thread) = ${reference.toFixed(0)}/s`);
      console.log(`pki only (parse + check CSR, encode + sign certificate; no HTTP, no database) = ${pkiOnly.toFixed(0)}/s`);
      console.log(`ratio issuance/reference = ${(rate / reference).toFixed(4)}; issuance/pki-only = ${(rate / pkiOnly).toFixed(3)}`);
    }
    if (failures.length) process.exitCode = 1;
  } finally {
    service.stop();
    kms?.stop();
  }
}

/** The X.509 work of one issuance alone, for seeing how much HTTP and the database add. */
export async function pkiOnlyPerSecond(csrs: string[]): Promise<number> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer = buildName({ commonName: 'Bench CA' });
  const started = performance.now();
  for (const pem of csrs) {
    const csr = parseCsr(pem);
    await signCertificate(
      {
        serial: randomSerial(),
        issuer,
        subject: buildName(csr.subject),
        subjectPublicKeyInfo: csr.publicKeySpki,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86400_000),
        extensions: [basicConstraints(false), keyUsage([KeyUsageFlags.digitalSignature]), subjectKeyIdentifier(keyIdentifier(csr.publicKeySpki))],
      },
      key,
    );
  }
  return csrs.length / ((performance.now() - started) / 1000);
}
