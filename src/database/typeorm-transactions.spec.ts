import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { TypeOrmTransactions } from './typeorm-transactions';

describe('TypeOrmTransactions.afterCommit (SQLite)', () => {
  const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:' });
  let transactions: TypeOrmTransactions;
  before(async () => {
    await dataSource.initialize();
    await dataSource.query('CREATE TABLE t (n INTEGER)');
    transactions = new TypeOrmTransactions(dataSource);
  });
  after(() => dataSource.destroy());

  it('runs callbacks after the commit, in order, before run() returns; nested runs join the outer commit', async () => {
    const seen: string[] = [];
    const result = await transactions.run(async () => {
      await transactions.sql('INSERT INTO t (n) VALUES (1)');
      transactions.afterCommit(() => seen.push(`first, ${committedRows()} row(s) visible`));
      await transactions.run(async () => transactions.afterCommit(() => seen.push('nested')));
      assert.deepEqual(seen, [], 'nothing runs before the commit');
      return 'done';
    });
    assert.equal(result, 'done');
    assert.deepEqual(seen, ['first, 1 row(s) visible', 'nested']);
  });

  it('does not run them when the transaction rolls back', async () => {
    let ran = false;
    await assert.rejects(
      transactions.run(async () => {
        await transactions.sql('INSERT INTO t (n) VALUES (2)');
        transactions.afterCommit(() => (ran = true));
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(ran, false);
    assert.equal(committedRows(), 1);
  });

  it('runs a callback at once outside a transaction', () => {
    let ran = false;
    transactions.afterCommit(() => (ran = true));
    assert.equal(ran, true);
  });

  function committedRows(): number {
    const connection = (dataSource.driver as unknown as { databaseConnection: { prepare(sql: string): { get(): { n: number } } } }).databaseConnection;
    return connection.prepare('SELECT COUNT(*) AS n FROM t').get().n;
  }
});

describe('TypeOrmTransactions.runGrouped (group commit, SQLite)', () => {
  const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:' });
  const groups: number[] = [];
  let transactions: TypeOrmTransactions;
  before(async () => {
    await dataSource.initialize();
    await dataSource.query('CREATE TABLE g (n INTEGER PRIMARY KEY)');
    transactions = new TypeOrmTransactions(dataSource, { maxBatch: 8, maxWaitMs: 0, observeGroup: (size) => groups.push(size) });
  });
  after(() => dataSource.destroy());

  const insert = (n: number) => transactions.runGrouped(async () => {
    await transactions.sql('INSERT INTO g (n) VALUES (?)', [n]);
    return n;
  });
  const stored = async () => (await dataSource.query('SELECT n FROM g ORDER BY n')).map((row: { n: number }) => row.n);

  it('commits works that arrive together in shared transactions of at most maxBatch, each answered after the commit', async () => {
    groups.length = 0;
    const answered: number[] = [];
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => insert(i + 1).then((n) => (answered.push(n), n))));
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(await stored(), results);
    assert.equal(groups.reduce((a, b) => a + b, 0), 20);
    assert.ok(groups.length < 20, `fewer commits than works (groups: ${groups.join(',')})`);
    assert.ok(Math.max(...groups) <= 8, `no group above maxBatch (groups: ${groups.join(',')})`);
  });

  it('fails only the work that fails: the rest of its group commits, its own writes do not', async () => {
    await dataSource.query('DELETE FROM g');
    const outcomes = await Promise.allSettled([
      insert(101),
      transactions.runGrouped(async () => {
        await transactions.sql('INSERT INTO g (n) VALUES (?)', [102]);
        throw new Error('refused');
      }),
      insert(103),
      // A unique violation, as a concurrent duplicate would meet.
      insert(101),
      insert(104),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /refused/);
    assert.match(String((outcomes[3] as PromiseRejectedResult).reason), /UNIQUE/);
    assert.deepEqual(await stored(), [101, 103, 104]);
  });

  it('runs beforeCommit callbacks inside the transaction, once per transaction, with values local to it', async () => {
    await dataSource.query('DELETE FROM g');
    const key = Symbol('test');
    const flushed: number[][] = [];
    const add = (n: number) => transactions.runGrouped(async () => {
      const pending = transactions.local(key, () => {
        const list: number[] = [];
        transactions.beforeCommit(async () => {
          flushed.push([...list]);
          for (const m of list) await transactions.sql('INSERT INTO g (n) VALUES (?)', [m]);
        });
        return list;
      });
      pending.push(n);
    });
    await Promise.all([1, 2, 3, 4, 5].map(add));
    assert.deepEqual(flushed.flat().sort(), [1, 2, 3, 4, 5]);
    assert.ok(flushed.length < 5, 'one flush per shared transaction');
    assert.deepEqual(await stored(), [1, 2, 3, 4, 5]);
    assert.throws(() => transactions.local(key, () => []), /needs a transaction/);
    assert.throws(() => transactions.beforeCommit(async () => undefined), /needs a transaction/);
  });

  it('joins the surrounding transaction when called inside one', async () => {
    await dataSource.query('DELETE FROM g');
    await assert.rejects(
      transactions.run(async () => {
        await insert(7);
        throw new Error('outer rolls back');
      }),
      /outer rolls back/,
    );
    assert.deepEqual(await stored(), []);
  });
});
