import { createHash, generateKeyPairSync, KeyObject, randomUUID, sign, X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { certificateParts, signCertificate } from '../src/pki/certificate';
import { keyIdentifier } from '../src/pki/extensions';
import { describeCertificate } from '../src/pki/issuance';
import { validityProblem, ValidityWindow, verifyIssuedBy } from '../src/pki/issued-by';
import { decodeX5cJwt, verifyJwsSignature } from '../src/pki/jws';
import { findProfile } from '../src/pki/profiles';
import { randomSerial } from '../src/pki/serial';
import { digestOf, SigningAlgorithm } from '../src/pki/signing';
import { signX5cJwt } from '../tools/clients/station-jwt';
import { machineFacts, option, percentile, writeResults } from './support';

/**
 * What run-time chain validation adds to certificate authentication (src/certificates/certificate-authenticator.ts),
 * in one process, no HTTP or database: per call, the work the authenticator did before it for a JWT (fingerprint,
 * token decode, JWS signature with the cached key), then verifyIssuedBy (@peculiar/x509: parse the certificate and
 * its authority's, issuer name, AKI, signature) as a cache miss pays it, and the cache hit that every later call of
 * the same certificate pays (a map lookup and the validity window). Per CA key type. docs/architecture.md, "Libraries".
 */
export async function issuedBy(): Promise<void> {
  const rounds = Number(option('rounds', '300'));
  const now = new Date();
  const results: Record<string, Record<string, number>> = {};
  console.log(`issued-by benchmark: ${rounds} rounds per measurement, a P-256 claim certificate under each CA key type; median and p99 in ms`);
  for (const [label, type, options, algorithm] of [
    ['EC P-256 CA', 'ec', { namedCurve: 'P-256' }, 'ECDSA_SHA_256'],
    ['EC P-384 CA', 'ec', { namedCurve: 'P-384' }, 'ECDSA_SHA_384'],
    ['RSA 2048 CA', 'rsa', { modulusLength: 2048 }, 'RSASSA_PKCS1_V1_5_SHA_256'],
  ] as const) {
    const ca = generateKeyPairSync(type as 'ec', options as { namedCurve: string });
    const caSigner = { algorithm: algorithm as SigningAlgorithm, sign: async (data: Buffer) => sign(digestOf(algorithm), data, ca.privateKey) };
    const caSpki = ca.publicKey.export({ type: 'spki', format: 'der' });
    const root = describeCertificate({ kind: 'root-ca', subject: { commonName: `Bench ${label}` }, pathLength: null, validityDays: 365, subjectPublicKeyInfo: caSpki, now, backdateSeconds: 300 });
    const caDer = await signCertificate({ serial: randomSerial(), ...root.tbs }, caSigner);
    const parts = certificateParts(caDer);
    const station = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = describeCertificate({
      kind: 'end-entity',
      issuer: { name: parts.subject, keyId: keyIdentifier(parts.subjectPublicKeyInfo), notBefore: root.tbs.notBefore, notAfter: root.tbs.notAfter },
      urls: { crl: 'https://pki.example/crl', caCertificate: 'https://pki.example/ca', ocsp: 'https://pki.example/ocsp' },
      profile: findProfile('claim', { internal: true }),
      names: { subject: { organization: 'Bench', commonName: 'claim bench' }, dnsNames: [], ipAddresses: [] },
      validityDays: 30,
      subjectPublicKeyInfo: station.publicKey.export({ type: 'spki', format: 'der' }),
      now,
      backdateSeconds: 300,
    });
    const der = await signCertificate({ serial: randomSerial(), ...leaf.tbs }, caSigner);
    const key: KeyObject = new X509Certificate(der).publicKey;
    const tokens = Array.from({ length: rounds }, () => signX5cJwt({ alg: 'ES256', privateKey: station.privateKey, chainDer: [der], payload: { aud: 'https://pki.example/v1/provisioning/exchange', jti: randomUUID() } }));
    const cache = new Map<string, ValidityWindow>();
    const issued = await verifyIssuedBy(der, caDer);
    if (!issued.ok) throw new Error(issued.message);
    cache.set(`fingerprint/${label}`, issued.validity);

    const before = await measure(rounds, async (i) => {
      const decoded = decodeX5cJwt(tokens[i]);
      createHash('sha256').update(decoded.chain[0]).digest('hex');
      verifyJwsSignature(tokens[i], key);
    });
    const miss = await measure(rounds, async () => {
      const result = await verifyIssuedBy(der, caDer);
      if (!result.ok) throw new Error(result.message);
    });
    const hit = await measure(rounds, async () => {
      const validity = cache.get(`fingerprint/${label}`)!;
      if (validityProblem(validity, new Date())) throw new Error('expired');
    });
    results[label] = { authenticationBeforeMs: before.p50, authenticationBeforeP99Ms: before.p99, cacheMissMs: miss.p50, cacheMissP99Ms: miss.p99, cacheHitMs: hit.p50, cacheHitP99Ms: hit.p99 };
    console.log(`  ${label}: JWT authentication before (decode, fingerprint, JWS signature) ${fmt(before)}; added on a cache miss ${fmt(miss)}; added on a cache hit ${fmt(hit)}`);
  }
  const file = writeResults('issued-by', { rounds, machine: machineFacts(), results });
  console.log(`  results: ${file}`);
}

function fmt(run: { p50: number; p99: number }): string {
  return `${run.p50.toFixed(3)} ms (p99 ${run.p99.toFixed(3)})`;
}

async function measure(rounds: number, call: (i: number) => Promise<void>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < Math.min(50, rounds); i++) await call(i); // warm-up: JIT, the libraries' first-use set-up
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    await call(i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}
