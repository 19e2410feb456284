import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { CrlRepository } from '../../src/revocation/crl.repository';
import { createCaPair, issueDevice } from '../support/fixtures';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, binaryBody, drivers, startTestApp, TestApp } from '../support/test-app';

/** Small chunks, so that a test CRL of a few entries spans several of them. */
const CHUNK_BYTES = 96;

/**
 * A CRL's DER is stored in crl_chunks, one chunk per statement with turns of the event loop between them, and made
 * current by its crls row only once every chunk is written (docs/architecture.md "CRLs"): the previous CRL is served
 * until then, a failed write publishes nothing and leaves no chunks, and chunks no CRL lists are deleted.
 */
for (const { driver, skip } of drivers()) {
  describe(`CRL stored in chunks on ${driver}`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let t: TestApp;
    let caId: string;
    let caPem: string;
    let repository: CrlRepository;
    let db: TypeOrmTransactions;
    /** Called with the sequence number of every chunk insert, before it runs (tests set it). */
    let onChunkInsert: ((seq: number) => Promise<void> | void) | undefined;

    const getCrl = () => t.http().get(`/v1/authorities/${caId}/crl`).buffer(true).parse(binaryBody);
    const revoke = async (thing: string) => {
      const device = await issueDevice(t, ssl, caId, thing);
      const res = await t.http().post(`/v1/certificates/${device.id}/revoke`).set(bearer(t.adminKey)).send({ reason: 'keyCompromise' });
      assert.equal(res.status, 200);
      return device.serial;
    };
    const count = async (sql: string, params: unknown[]) => Number((await db.sql<{ n: number | string }>(sql, params))[0].n);
    const chunksOf = (crlNumber: number) => count('SELECT COUNT(*) AS n FROM crl_chunks WHERE authority_id = ? AND crl_number = ?', [caId, crlNumber]);
    const pruned = () => Promise.all([...(repository as unknown as { pruning: Set<Promise<void>> }).pruning]);
    const verifies = (der: Buffer, name: string) =>
      ssl.run(['crl', '-inform', 'DER', '-in', ssl.file(name, der), '-CAfile', ssl.file('ca.pem', caPem), '-noout']).output;

    before(async () => {
      t = await startTestApp(driver);
      const pair = await createCaPair(t);
      caId = pair.intermediate.id;
      caPem = (await t.http().get(`/v1/authorities/${caId}`).set(bearer(t.adminKey))).body.certificatePem as string;
      repository = t.app.get(CrlRepository);
      Object.assign(repository, { chunkBytes: CHUNK_BYTES });
      db = t.app.get(TypeOrmTransactions);
      const sql = db.sql.bind(db);
      db.sql = (async (text: string, params: unknown[] = []) => {
        if (text.startsWith('INSERT INTO crl_chunks') && onChunkInsert) await onChunkInsert(Number(params[2]));
        return sql(text, params);
      }) as typeof db.sql;
    });
    after(async () => {
      await t?.close();
      ssl.cleanup();
    });

    it('stores the CRL in chunks of at most the chunk size, giving the event loop turns between them, and reads back what it served', async () => {
      let turns = 0;
      let running = true;
      const tick = () => running && (turns++, setImmediate(tick));
      const turnsAtChunk: number[] = [];
      /** SQLite: the service connection's automatic checkpoint threshold at each chunk insert (SqliteCheckpoints defers it). */
      const autocheckpoint = async () => Number((await db.sql<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))[0].wal_autocheckpoint);
      const thresholdAtChunk: number[] = [];
      onChunkInsert = async (seq) => {
        turnsAtChunk[seq] = turns;
        if (driver === 'sqlite') thresholdAtChunk.push(await autocheckpoint());
      };
      setImmediate(tick);
      try {
        await revoke('chunks-a');
        await revoke('chunks-b');
        const res = await getCrl();
        assert.equal(res.status, 200);
        const der = res.body as Buffer;
        assert.match(verifies(der, 'chunked.crl'), /verify OK/);
        const info = (await repository.latestInfo(caId))!;
        const chunks = Math.ceil(der.length / CHUNK_BYTES);
        assert.ok(chunks >= 3, `the CRL (${der.length} bytes) spans several chunks`);
        assert.equal(await chunksOf(info.crlNumber), chunks);
        const [row] = await db.sql<{ der: string; chunks: number | string }>('SELECT der, chunks FROM crls WHERE authority_id = ? AND crl_number = ?', [caId, info.crlNumber]);
        assert.equal(Number(row.chunks), chunks);
        assert.equal(String(row.der), '', 'the crls row holds no DER of its own');
        // As another process (or this one after a restart) reads it: chunk by chunk from the database.
        assert.deepEqual(await repository.der(caId, info.crlNumber), der);
        const seen = turnsAtChunk.slice(-chunks);
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `the event loop ran between chunks ${i - 1} and ${i} (${seen.join(', ')})`);
        if (driver === 'sqlite') {
          assert.ok(thresholdAtChunk.length >= chunks && thresholdAtChunk.every((pages) => pages === 0), `SQLite's own checkpoint off while chunks are written: ${thresholdAtChunk.join(', ')}`);
          // Back once the checkpoint on the thread after the CRL is done (the request did not wait for it).
          const deadline = Date.now() + 10_000;
          while ((await autocheckpoint()) !== 4000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
          assert.equal(await autocheckpoint(), 4000, "SQLite's own checkpoint back after the CRL");
        }
      } finally {
        running = false;
        onChunkInsert = undefined;
      }
    });

    it('serves the previous CRL while the chunks are written, and publishes nothing and leaves no chunks when a write fails', async () => {
      const previous = (await repository.latestInfo(caId))!;
      const previousDer = (await repository.der(caId, previous.crlNumber))!;
      const during: { latest: number | undefined; der: Buffer | null }[] = [];
      onChunkInsert = async (seq) => {
        if (seq === 1) during.push({ latest: (await repository.latestInfo(caId))?.crlNumber, der: await repository.der(caId, previous.crlNumber) });
        if (seq === 2) throw new Error('simulated failure of a chunk write');
      };
      let serial: string;
      try {
        serial = await revoke('chunks-c');
        const failed = await t.http().get(`/v1/authorities/${caId}/crl`);
        assert.equal(failed.status, 500);
      } finally {
        onChunkInsert = undefined;
      }
      assert.ok(during.length >= 1, 'chunks were being written');
      for (const seen of during) {
        assert.equal(seen.latest, previous.crlNumber, 'the previous CRL stays current while the next one is written');
        assert.deepEqual(seen.der, previousDer);
      }
      assert.deepEqual(await repository.latestInfo(caId), previous, 'nothing was published');
      assert.equal(await count('SELECT COUNT(*) AS n FROM crl_chunks WHERE authority_id = ? AND crl_number > ?', [caId, previous.crlNumber]), 0, 'no chunks are left of the failed CRLs');

      const res = await getCrl();
      assert.equal(res.status, 200);
      assert.match(verifies(res.body as Buffer, 'after-failure.crl'), /verify OK/);
      const text = ssl.run(['crl', '-inform', 'DER', '-in', ssl.file('after-failure.crl'), '-noout', '-text']).output.toLowerCase();
      assert.ok(text.includes(serial), 'the next CRL lists the revocation');
    });

    it('deletes chunks that no CRL lists (a crash or a lost race left them) when the next CRL is published', async () => {
      const current = (await repository.latestInfo(caId))!;
      const value = driver === 'postgres' ? "encode(?::bytea, 'base64')" : '?';
      // Chunks of a CRL number below the current one that was never published, as a crash between chunk writes leaves.
      for (let seq = 0; seq < 2; seq++) {
        await db.run(() => db.sql(`INSERT INTO crl_chunks (authority_id, crl_number, seq, bytes) VALUES (?, ?, ?, ${value})`, [caId, current.crlNumber - 1000, seq, Buffer.from('orphan')]));
      }
      await revoke('chunks-d');
      assert.equal((await getCrl()).status, 200);
      await pruned();
      assert.equal(await chunksOf(current.crlNumber - 1000), 0, 'the orphaned chunks are deleted');
      const latest = (await repository.latestInfo(caId))!;
      assert.ok(latest.crlNumber > current.crlNumber);
      assert.ok((await chunksOf(current.crlNumber)) > 0, 'the chunks of CRLs still listed are kept');
    });

    it('reads a CRL stored before chunks, whole in its crls row', async () => {
      const der = Buffer.from('3003020101', 'hex');
      const authorityId = randomUUID();
      const value = driver === 'postgres' ? "encode(?::bytea, 'base64')" : '?';
      await db.run(() =>
        db.sql(`INSERT INTO crls (authority_id, crl_number, this_update, next_update, revocations_covered, der) VALUES (?, 1, ?, ?, 0, ${value})`, [
          authorityId,
          new Date().toISOString(),
          new Date().toISOString(),
          der,
        ]),
      );
      assert.deepEqual(await repository.der(authorityId, 1), der);
    });
  });
}
