import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Clock } from '../../common/clock';
import { DomainError } from '../../common/errors';
import { LocalKeyEntity } from '../../database/entities/local-key.entity';
import { TypeOrmTransactions } from '../../database/typeorm-transactions';
import { digestOf } from '../../pki/signing';
import { KeySpec, signingAlgorithmFor } from '../key-spec';
import { HASH_SLICE_BYTES } from '../large-input';
import { LocalKeyManager } from './local-key-manager';

/** Just enough of TypeORM's EntityManager for the local key store: one in-memory table. */
class FakeKeyTable {
  readonly rows = new Map<string, LocalKeyEntity>();

  asTransactions(): TypeOrmTransactions {
    const manager = {
      insert: async (_entity: unknown, row: LocalKeyEntity) => {
        if (this.rows.has(row.id)) throw new Error('duplicate key');
        this.rows.set(row.id, { ...row });
      },
      findOneBy: async (_entity: unknown, where: { id: string }) => {
        const row = this.rows.get(where.id);
        return row ? { ...row } : null;
      },
      findOne: async () => {
        const sorted = [...this.rows.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
        return sorted[0] ? { ...sorted[0] } : null;
      },
    };
    return { manager: () => manager, run: <T>(work: () => Promise<T>) => work() } as unknown as TypeOrmTransactions;
  }
}

const clock: Clock = { now: () => new Date('2025-06-01T12:00:00.000Z') };

function setup(masterKey = randomBytes(32)) {
  const table = new FakeKeyTable();
  const keys = new LocalKeyManager(masterKey, table.asTransactions(), clock);
  return { table, keys, masterKey };
}

async function expectUnavailable(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DomainError, `expected a DomainError, got ${String(err)}`);
    assert.equal(err.code, 'KEY_BACKEND_UNAVAILABLE');
    assert.match(err.message, message);
    return true;
  });
}

describe('LocalKeyManager', () => {
  const specs: { spec: KeySpec; type: string; detail: Record<string, unknown> }[] = [
    { spec: 'EC_P256', type: 'ec', detail: { namedCurve: 'prime256v1' } },
    { spec: 'EC_P384', type: 'ec', detail: { namedCurve: 'secp384r1' } },
    { spec: 'RSA_2048', type: 'rsa', detail: { modulusLength: 2048 } },
  ];
  for (const { spec, type, detail } of specs) {
    it(`creates a ${spec} key whose signer makes signatures that verify with its public key`, async () => {
      const { keys } = setup();
      const created = await keys.createKey({ spec, label: 'test CA', authorityId: 'test-authority' });
      const publicKey = createPublicKey({ key: created.publicKeySpki, format: 'der', type: 'spki' });
      assert.equal(publicKey.asymmetricKeyType, type);
      for (const [name, value] of Object.entries(detail)) {
        assert.equal((publicKey.asymmetricKeyDetails as Record<string, unknown>)[name], value);
      }
      const signer = await keys.signer(created.keyRef, spec);
      assert.equal(signer.algorithm, signingAlgorithmFor(spec));
      assert.deepEqual(signer.publicKeySpki(), created.publicKeySpki);
      const data = Buffer.from('to be signed');
      const signature = await signer.sign(data);
      assert.ok(verify(digestOf(signer.algorithm), data, publicKey, signature));
      assert.ok(!verify(digestOf(signer.algorithm), Buffer.from('something else'), publicKey, signature));
    });
  }

  for (const spec of ['EC_P384', 'RSA_2048'] as const) {
    it(`signs an input larger than a hash slice (a CRL's TBS) with a ${spec} key: the signature verifies over the whole input`, async () => {
      const { keys } = setup();
      const created = await keys.createKey({ spec, label: 'test CA', authorityId: 'test-authority' });
      const signer = await keys.signer(created.keyRef, spec);
      const data = Buffer.alloc(HASH_SLICE_BYTES * 2 + 5, 0x5a);
      const signature = await signer.sign(data);
      const publicKey = createPublicKey({ key: created.publicKeySpki, format: 'der', type: 'spki' });
      assert.ok(verify(digestOf(signer.algorithm), data, publicKey, signature));
      data[data.length - 1] ^= 1;
      assert.ok(!verify(digestOf(signer.algorithm), data, publicKey, signature), 'the last slice is covered');
    });
  }

  it('stores the private key sealed, never as PKCS #8 plaintext, with the public key, label and creation time', async () => {
    const { keys, table } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'x'.repeat(300), authorityId: 'test-authority' });
    const row = table.rows.get(created.keyRef);
    assert.ok(row);
    assert.equal(row.keySpec, 'EC_P256');
    assert.equal(row.label.length, 200, 'label is cut to the column size');
    assert.equal(row.publicKeySpki, created.publicKeySpki.toString('base64'));
    assert.equal(row.createdAt, '2025-06-01T12:00:00.000Z');
    const sealed = Buffer.from(row.ciphertext, 'base64');
    // iv (12) + tag (16) + ciphertext of a P-256 PKCS #8 key (138 bytes)
    assert.equal(sealed.length, 12 + 16 + 138);
    // A PKCS #8 EC key starts 30 81 87 02 01 00 30 13 06 07 2a 86 48 ce 3d 02 01 (SEQ, version 0, ecPublicKey).
    assert.ok(!sealed.includes(Buffer.from('2a8648ce3d0201', 'hex')), 'no plaintext key structure in the stored bytes');
  });

  it('hands out one signer per key reference', async () => {
    const { keys } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'cached', authorityId: 'test-authority' });
    assert.equal(keys.signer(created.keyRef, 'EC_P256'), keys.signer(created.keyRef, 'EC_P256'));
  });

  it('refuses to sign with a different master key, naming FLEET_PKI_MASTER_KEY', async () => {
    const { keys, table } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'k', authorityId: 'test-authority' });
    const other = new LocalKeyManager(randomBytes(32), table.asTransactions(), clock);
    await expectUnavailable(other.signer(created.keyRef, 'EC_P256'), /cannot decrypt CA keys: wrong FLEET_PKI_MASTER_KEY\?/);
    await expectUnavailable(other.checkKey(created.keyRef, 'EC_P256'), /wrong FLEET_PKI_MASTER_KEY/);
  });

  it('refuses a sealed key moved to another row (the key id is bound as AAD)', async () => {
    const { keys, table } = setup();
    const a = await keys.createKey({ spec: 'EC_P256', label: 'a', authorityId: 'test-authority' });
    const b = await keys.createKey({ spec: 'EC_P256', label: 'b', authorityId: 'test-authority' });
    table.rows.get(b.keyRef)!.ciphertext = table.rows.get(a.keyRef)!.ciphertext;
    await expectUnavailable(keys.signer(b.keyRef, 'EC_P256'), /cannot decrypt/);
  });

  it('refuses a tampered ciphertext', async () => {
    const { keys, table } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'k', authorityId: 'test-authority' });
    const row = table.rows.get(created.keyRef)!;
    const bytes = Buffer.from(row.ciphertext, 'base64');
    bytes[bytes.length - 1] ^= 0x01;
    row.ciphertext = bytes.toString('base64');
    await expectUnavailable(keys.signer(created.keyRef, 'EC_P256'), /cannot decrypt/);
  });

  it('refuses a key reference whose recorded spec differs', async () => {
    const { keys } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'k', authorityId: 'test-authority' });
    await expectUnavailable(keys.signer(created.keyRef, 'EC_P384'), /does not match its recorded spec/);
  });

  it('reports a missing key, and does not cache the failure', async () => {
    const { keys, table } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'k', authorityId: 'test-authority' });
    const row = table.rows.get(created.keyRef)!;
    table.rows.delete(created.keyRef);
    await expectUnavailable(keys.signer(created.keyRef, 'EC_P256'), /missing from the local key store/);
    table.rows.set(created.keyRef, row);
    const signer = await keys.signer(created.keyRef, 'EC_P256');
    assert.equal(signer.algorithm, 'ECDSA_SHA_256');
  });

  it('reports a key it can decrypt as ready', async () => {
    const { keys } = setup();
    const created = await keys.createKey({ spec: 'EC_P256', label: 'k', authorityId: 'test-authority' });
    await keys.checkKey(created.keyRef, 'EC_P256');
  });

  it('gives every key its own reference and IV', async () => {
    const { keys, table } = setup();
    const refs = await Promise.all([1, 2, 3].map((i) => keys.createKey({ spec: 'EC_P256', label: `k${i}`, authorityId: 'test-authority' })));
    assert.equal(new Set(refs.map((r) => r.keyRef)).size, 3);
    const ivs = [...table.rows.values()].map((row) => Buffer.from(row.ciphertext, 'base64').subarray(0, 12).toString('hex'));
    assert.equal(new Set(ivs).size, 3);
  });
});
