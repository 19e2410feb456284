import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';

/**
 * TypeOrmTransactions.sql with { prepared: true } (the expiry search's statement, docs/architecture.md#search-indexes):
 * on PostgreSQL a named prepared statement of the connection, in a transaction or not; past 32 distinct texts, unnamed.
 * One pooled connection, so the statements it prepared are visible in pg_prepared_statements.
 */
const pgSkip = process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set`;

describe('prepared statements on PostgreSQL (TypeOrmTransactions.sql { prepared })', { skip: pgSkip }, () => {
  let db: TemporaryDatabase;
  let source: DataSource;
  let t: TypeOrmTransactions;

  before(async () => {
    db = await temporaryDatabase('postgres');
    if (db.config.driver !== 'postgres') throw new Error('expected PostgreSQL');
    source = await new DataSource({ type: 'postgres', url: db.config.url, poolSize: 1 }).initialize();
    await source.query('CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL)');
    await source.query("INSERT INTO things VALUES (1, 'one'), (2, 'two'), (3, 'three')");
    t = new TypeOrmTransactions(source);
  });

  after(async () => {
    await source?.destroy();
    await db?.drop();
  });

  const prepared = async () => (await source.query<{ statement: string; calls: string }[]>("SELECT statement, generic_plans + custom_plans AS calls FROM pg_prepared_statements WHERE name LIKE 'fleet_pki_%'"));

  it('answers what the unnamed statement answers, planned once per connection and reused, in a transaction too', async () => {
    const text = 'SELECT name FROM things WHERE id >= (SELECT ?::int) ORDER BY id';
    assert.deepEqual(await t.sql(text, [2], { prepared: true }), [{ name: 'two' }, { name: 'three' }]);
    assert.deepEqual(await t.sql(text, [3], { prepared: true }), [{ name: 'three' }]);
    assert.deepEqual(await t.run(() => t.sql(text, [1], { prepared: true })), [{ name: 'one' }, { name: 'two' }, { name: 'three' }]);
    assert.deepEqual(await t.sql(text, [2]), [{ name: 'two' }, { name: 'three' }]);
    const statements = await prepared();
    assert.equal(statements.length, 1);
    assert.equal(statements[0].statement, text.replace('?', '$1'));
    assert.equal(Number(statements[0].calls), 3);
  });

  it('names at most 32 texts: the ones after run unnamed, with the same answers', async () => {
    for (let i = 0; i < 40; i++) assert.deepEqual(await t.sql(`SELECT name FROM things WHERE id = ? AND ${i} = ${i}`, [1], { prepared: true }), [{ name: 'one' }]);
    assert.equal((await prepared()).length, 32);
  });
});
