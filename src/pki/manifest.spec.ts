import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { TestVendor } from '../../test/support/secure-element-manifests';
import { ManifestEntryError, readManifestSigner, verifyManifestEntry } from './manifest';

/** The committed fixture: one entry shaped exactly as Microchip's Trust&GO manifests hold them (test-made keys). */
const FIXTURE_DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'secure-elements');

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ManifestEntryError, `a ManifestEntryError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('the entry was accepted');
}

function reencode(entry: Record<string, unknown>, change: (payload: Record<string, unknown>) => void): Record<string, unknown> {
  const payload = JSON.parse(Buffer.from(entry.payload as string, 'base64url').toString()) as Record<string, unknown>;
  change(payload);
  return { ...entry, payload: Buffer.from(JSON.stringify(payload)).toString('base64url') };
}

describe('secure-element manifest entries (Microchip Trust Platform format)', () => {
  let vendor: TestVendor;
  before(async () => {
    vendor = await TestVendor.create();
  });

  it('reads the committed fixture shaped like a real manifest entry, with its signer', () => {
    const [entry] = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'manifest.json'), 'utf8')) as Record<string, unknown>[];
    // The shape as shipped: flattened JWS JSON with the uniqueId in the unprotected header.
    assert.deepEqual(Object.keys(entry).sort(), ['header', 'payload', 'protected', 'signature']);
    const header = JSON.parse(Buffer.from(entry.protected as string, 'base64url').toString()) as Record<string, string>;
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'kid', 'typ', 'x5t#S256']);
    const payload = JSON.parse(Buffer.from(entry.payload as string, 'base64url').toString()) as Record<string, unknown>;
    for (const key of ['version', 'model', 'partNumber', 'manufacturer', 'provisioner', 'distributor', 'groupId', 'provisioningTimestamp', 'uniqueId', 'publicKeySet']) {
      assert.ok(key in payload, `payload.${key}`);
    }
    const signer = readManifestSigner(readFileSync(path.join(FIXTURE_DIR, 'manifest-signer.pem'), 'utf8'));
    const verified = verifyManifestEntry(entry, signer);
    assert.equal(verified.uniqueId, (entry.header as { uniqueId: string }).uniqueId);
    assert.equal(verified.model, 'ATECC608B');
    assert.equal(verified.partNumber, 'ATECC608B-TNGTLS');
    assert.equal(verified.keyDescription, 'EC-P256');
    assert.equal(verified.chainDer.length, 1);
    assert.match(verified.fingerprint, /^[0-9a-f]{64}$/);
  });

  it('verifies a fresh entry and returns the device certificate (x5c[0]) and its signer (x5c[1])', async () => {
    const entry = await vendor.entry(7);
    const verified = verifyManifestEntry(entry, readManifestSigner(vendor.signerCertificateBase64));
    assert.equal(verified.uniqueId, TestVendor.uniqueId(7));
    assert.ok(new X509Certificate(verified.certificateDer).checkIssued(new X509Certificate(vendor.intermediate.der)));
    assert.ok(verified.chainDer[0].equals(vendor.intermediate.der));
    assert.match(verified.subject, /CN=sn0123/);
  });

  it('accepts the signer as PEM or as base64 DER', () => {
    assert.equal(readManifestSigner(vendor.signerCertificatePem).fingerprint, readManifestSigner(vendor.signerCertificateBase64).fingerprint);
  });

  const cases: [string, (v: TestVendor) => Promise<Record<string, unknown>>, string][] = [
    ['a broken signature', (v) => v.entry(1, { breakSignature: true }), 'BAD_SIGNATURE'],
    ['a device certificate issued by another signer than its x5c[1]', (v) => v.entry(2, { foreignIssuer: true }), 'CHAIN_INVALID'],
    ['an entry signed by another manifest signer', (v) => v.entry(3, { otherManifestSigner: true }), 'WRONG_SIGNER'],
    ['alg none', async (v) => ({ ...(await v.entry(4)), protected: Buffer.from('{"alg":"none"}').toString('base64url') }), 'UNSUPPORTED_ALGORITHM'],
    ['alg HS256', async (v) => ({ ...(await v.entry(4)), protected: Buffer.from('{"alg":"HS256"}').toString('base64url') }), 'UNSUPPORTED_ALGORITHM'],
    ['a header uniqueId that is not the payload one', async (v) => ({ ...(await v.entry(5)), header: { uniqueId: 'ff' } }), 'UNIQUE_ID_MISMATCH'],
    ['a missing signature member', async (v) => ({ ...(await v.entry(6)), signature: undefined }), 'MALFORMED_ENTRY'],
    ['a JSON array instead of an object', async () => [] as unknown as Record<string, unknown>, 'MALFORMED_ENTRY'],
  ];
  for (const [what, make, code] of cases) {
    it(`refuses ${what} (${code})`, async () => {
      const signer = readManifestSigner(vendor.signerCertificateBase64);
      assert.equal(refusal(() => verifyManifestEntry(undefined, signer)), 'MALFORMED_ENTRY');
      const entry = await make(vendor);
      assert.equal(refusal(() => verifyManifestEntry(entry, signer)), code);
    });
  }

  it('refuses a changed payload (the signature covers it) and, re-signed, a JWK that is not the certificate key', async () => {
    const signer = readManifestSigner(vendor.signerCertificateBase64);
    const entry = await vendor.entry(8);
    const changed = reencode(entry, (p) => (p.model = 'ATECC608A'));
    assert.equal(refusal(() => verifyManifestEntry(changed, signer)), 'BAD_SIGNATURE');
  });

  it('refuses an entry without any x5c, and an x5c without the signer', async () => {
    const signer = readManifestSigner(vendor.signerCertificateBase64);
    const entry = await vendor.entry(9);
    const noX5c = reencode(entry, (p) => ((p.publicKeySet as { keys: Record<string, unknown>[] }).keys.forEach((k) => delete k.x5c)));
    // The payload changed, so the signature no longer verifies: the signature is checked first, before anything it covers.
    assert.equal(refusal(() => verifyManifestEntry(noX5c, signer)), 'BAD_SIGNATURE');
  });

  it('refuses a manifest signer that is not an EC P-256/P-384 certificate', () => {
    assert.throws(() => readManifestSigner('not a certificate!'), ManifestEntryError);
    assert.throws(() => readManifestSigner(Buffer.from('garbage').toString('base64')), ManifestEntryError);
  });
});
