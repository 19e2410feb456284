import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { signCrl, CrlEntry } from '../src/pki/crl';
import { buildName } from '../src/pki/names';
import { SigningKey } from '../src/pki/signing';
import { option } from './support';

export async function crl(): Promise<void> {
  const sizes = option('sizes', '1000,10000,50000').split(',').map(Number);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key: SigningKey = { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, privateKey) };
  const issuer = buildName({ commonName: 'Bench CA' });
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
