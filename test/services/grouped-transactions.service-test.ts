import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { eventually } from '../support/eventually';

/**
 * Grouped transactions of two processes on one PostgreSQL database (docs/architecture.md, "Replicas"). Each process is
 * played by a DataSource and a TypeOrmTransactions of its own; `head` stands for the audit chain head, `counter` for a
 * row a later work of a group locks (an authority's revocation counter, a claim's quota). Process A's group locks the
 * head, then the counter; process B's locks the counter, then the head: the order a group took before the head came
 * first, which PostgreSQL ends with "deadlock detected".
 */
const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set`;

describe('grouped transactions of two processes on PostgreSQL', { skip: pgSkip }, () => {
  let db: TemporaryDatabase;
  const sources: DataSource[] = [];

  before(async () => {
    db = await temporaryDatabase('postgres');
    if (db.config.driver !== 'postgres') throw new Error('expected PostgreSQL');
    for (let i = 0; i < 4; i++) sources.push(await new DataSource({ type: 'postgres', url: db.config.url }).initialize());
    await sources[0].query('CREATE TABLE head (id integer PRIMARY KEY); CREATE TABLE counter (id integer PRIMARY KEY, n integer NOT NULL)');
    await sources[0].query('INSERT INTO head VALUES (1); INSERT INTO counter VALUES (1, 0)');
  });

  after(async () => {
    for (const source of sources) await source.destroy();
    await db?.drop();
  });

  const lockHead = (t: TypeOrmTransactions) => t.sql('SELECT id FROM head WHERE id = 1 FOR UPDATE').then(() => undefined);
  const bump = (t: TypeOrmTransactions) => t.sql('UPDATE counter SET n = n + 1 WHERE id = 1');
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A's group: head, (B holds the counter by then, unless B waits for the head), counter. B's: counter, head. */
  async function opposite(a: TypeOrmTransactions, b: TypeOrmTransactions): Promise<{ runsOfA: number; runsOfB: number }> {
    let runsOfA = 0;
    let runsOfB = 0;
    let bHoldsCounter = false;
    let aHoldsHead = false;
    const groupA = a.runGrouped(async () => {
      runsOfA++;
      await lockHead(a);
      aHoldsHead = true;
      for (let i = 0; i < 20 && !bHoldsCounter && runsOfA === 1; i++) await sleep(25);
      await bump(a);
    });
    // B starts once A holds the head (a fixed sleep could start it first on a loaded machine: no crossing then).
    await eventually('A holds the head', () => aHoldsHead, 10_000, 5);
    const groupB = b.runGrouped(async () => {
      runsOfB++;
      await bump(b);
      bHoldsCounter = true;
      await lockHead(b);
    });
    await Promise.all([groupA, groupB]);
    return { runsOfA, runsOfB };
  }

  it('never deadlocks when every grouped transaction takes the head first (firstInGroupedTransactions)', async () => {
    const [a, b] = [new TypeOrmTransactions(sources[0]), new TypeOrmTransactions(sources[1])];
    for (const t of [a, b]) t.firstInGroupedTransactions(() => lockHead(t));
    const before = Number((await sources[0].query('SELECT n FROM counter'))[0].n);
    assert.deepEqual(await opposite(a, b), { runsOfA: 1, runsOfB: 1 }, 'no transaction was aborted and run again');
    assert.equal(Number((await sources[0].query('SELECT n FROM counter'))[0].n), before + 2);
  });

  it('runs a grouped transaction again when PostgreSQL aborts it for a deadlock, instead of failing it', async () => {
    // Without the first step the lock orders cross: PostgreSQL aborts one of the two, which runs again and commits.
    const [a, b] = [new TypeOrmTransactions(sources[2]), new TypeOrmTransactions(sources[3])];
    const before = Number((await sources[0].query('SELECT n FROM counter'))[0].n);
    const runs = await opposite(a, b);
    assert.equal(runs.runsOfA + runs.runsOfB, 3, `one of the two was aborted once and ran again: ${JSON.stringify(runs)}`);
    assert.equal(Number((await sources[0].query('SELECT n FROM counter'))[0].n), before + 2);
  });
});
