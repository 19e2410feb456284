/**
 * Benchmarks. Run with `npm run bench -- <name> [options]`:
 *   issuance [--count 400] [--concurrency 16] [--driver sqlite|postgres]
 *       Certificates issued per second through the HTTP API (CSR checks, signing, insert + audit event in
 *       one transaction), reported against a reference measured in the same run: raw ECDSA P-256 signatures
 *       per second with node:crypto on the same machine. The ratio is what to compare between runs.
 *   crl [--sizes 1000,10000,50000]
 *       Time to build and sign a CRL with n entries, per entry, to show it stays linear.
 * PostgreSQL runs need FLEET_PKI_TEST_PG_URL.
 */
import 'reflect-metadata';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { KeyUsageFlags, Name } from '@peculiar/asn1-x509';
import { signCertificate } from '../src/pki/certificate';
import { parseCsr } from '../src/pki/csr';
import { basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../src/pki/extensions';
import { randomSerial } from '../src/pki/serial';
import { buildCsr } from '../test/support/csr-builder';
import { createCaPair } from '../test/support/fixtures';
import { bearer, startTestApp } from '../test/support/test-app';
import { signCrl, CrlEntry } from '../src/pki/crl';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : fallback;
}

/** Reference: raw P-256 ECDSA signatures per second over a TBS-sized message, single-threaded. */
function referenceSignaturesPerSecond(): number {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const message = randomBytes(600);
  const deadline = performance.now() + 2000;
  let count = 0;
  const started = performance.now();
  while (performance.now() < deadline) {
    sign('sha256', message, privateKey);
    count++;
  }
  return count / ((performance.now() - started) / 1000);
}

async function issuance(): Promise<void> {
  const count = Number(option('count', '400'));
  const concurrency = Number(option('concurrency', '16'));
  const driver = option('driver', 'sqlite') as 'sqlite' | 'postgres';
  const t = await startTestApp(driver);
  try {
    const { intermediate } = await createCaPair(t);
    const csrs = Array.from({ length: count }, (_, i) => buildCsr({ commonName: `bench-${i}` }));
    const issueOne = async (i: number) => {
      const res = await fetch(`${t.baseUrl}/v1/certificates`, {
        method: 'POST',
        headers: { ...bearer(t.adminKey), 'Content-Type': 'application/json' },
        body: JSON.stringify({ authorityId: intermediate.id, csr: csrs[i], profile: 'device', thingName: `bench-${i}` }),
      });
      if (res.status !== 201) throw new Error(`issuance failed: ${res.status} ${await res.text()}`);
    };
    // Warm-up: JIT, connection pool, signer cache.
    for (let i = 0; i < 20; i++) await issueOne(i);
    let next = 20;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) await issueOne(next++);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const rate = (count - 20) / seconds;
    const reference = referenceSignaturesPerSecond();
    const pkiOnly = await pkiOnlyPerSecond(csrs);
    console.log(`issuance (${driver}, concurrency ${concurrency}): ${count - 20} certificates in ${seconds.toFixed(2)} s = ${rate.toFixed(0)} certificates/s`);
    console.log(`reference: raw ECDSA P-256 signatures (node:crypto, one thread) = ${reference.toFixed(0)}/s`);
    console.log(`pki only (parse + check CSR, encode + sign certificate; no HTTP, no database) = ${pkiOnly.toFixed(0)}/s`);
    console.log(`ratio issuance/reference = ${(rate / reference).toFixed(4)}; issuance/pki-only = ${(rate / pkiOnly).toFixed(3)}`);
  } finally {
    await t.close();
  }
}

/** The X.509 work of one issuance alone, for seeing how much HTTP and the database add. */
async function pkiOnlyPerSecond(csrs: string[]): Promise<number> {
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

async function crl(): Promise<void> {
  const sizes = option('sizes', '1000,10000,50000').split(',').map(Number);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer: Name = buildName({ commonName: 'Bench CA' });
  for (const size of sizes) {
    const entries: CrlEntry[] = Array.from({ length: size }, () => ({ serial: randomBytes(20), revokedAt: new Date(), reason: 'keyCompromise' }));
    const started = performance.now();
    const der = await signCrl(
      { issuer, issuerKeyId: randomBytes(20), crlNumber: 1, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86400_000), entries },
      key,
    );
    const ms = performance.now() - started;
    console.log(`crl: ${size} entries → ${(der.length / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms (${((ms * 1000) / size).toFixed(1)} µs/entry)`);
  }
}

const benches: Record<string, () => Promise<void>> = { issuance, crl };
const name = process.argv[2];
if (!benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]`);
  process.exit(2);
}
benches[name]().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
