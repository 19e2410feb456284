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
