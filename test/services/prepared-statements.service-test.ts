import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource, QueryFailedError } from 'typeorm';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { toProblem } from '../../src/common/problem.filter';
import { TypeOrmLogger } from '../../src/database/typeorm-logger';
import { TypeOrmTransactions } from '../../src/database/typeorm-transactions';
import { eventually } from '../support/eventually';

/**
 * TypeOrmTransactions.sql with { prepared: 'test' } (the expiry search's statement, docs/architecture.md#search-indexes):
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
    assert.deepEqual(await t.sql(text, [2], { prepared: 'test' }), [{ name: 'two' }, { name: 'three' }]);
    assert.deepEqual(await t.sql(text, [3], { prepared: 'test' }), [{ name: 'three' }]);
    assert.deepEqual(await t.run(() => t.sql(text, [1], { prepared: 'test' })), [{ name: 'one' }, { name: 'two' }, { name: 'three' }]);
    assert.deepEqual(await t.sql(text, [2]), [{ name: 'two' }, { name: 'three' }]);
    const statements = await prepared();
    assert.equal(statements.length, 1);
    assert.equal(statements[0].statement, text.replace('?', '$1'));
    assert.equal(Number(statements[0].calls), 3);
  });

  it('names at most 32 texts of a family: the ones after run unnamed, with the same answers; other families keep their names', async () => {
    const before = (await prepared()).length;
    for (let i = 0; i < 40; i++) assert.deepEqual(await t.sql(`SELECT name FROM things WHERE id = ? AND ${i} = ${i}`, [1], { prepared: 'variants' }), [{ name: 'one' }]);
    assert.equal((await prepared()).length, before + 32);
    // A family whose texts vary (the expiry search's filters and page sizes) used up its names: a hot read's text of
    // another family, first seen only now, is still named.
    const hot = 'SELECT name FROM things WHERE name = ?';
    assert.deepEqual(await t.sql(hot, ['two'], { prepared: 'hot' }), [{ name: 'two' }]);
    assert.ok((await prepared()).some((row) => row.statement === hot.replace('?', '$1')), 'the other family\'s text is a named statement');
    assert.equal((await prepared()).length, before + 33);
  });
});

/**
 * A prepared statement that fails fails as the unnamed statement does (docs/architecture.md#prepared-statements):
 * the same error (TypeORM's QueryFailedError around the driver's), the same Database log lines without the parameters,
 * the same problem answered, and the connection back in the pool (or out of it when it broke).
 */
describe('a failing prepared statement fails as the unnamed one does', { skip: pgSkip }, () => {
  let db: TemporaryDatabase;
  let source: DataSource;
  let t: TypeOrmTransactions;
  /** What the application's TypeORM logger wrote. */
  const lines: string[] = [];
  const capture = (level: string) => (message: unknown) => void lines.push(`${level}: ${String(message)}`);
  const logger = new TypeOrmLogger({ debug: capture('debug'), error: capture('error'), warn: capture('warn'), log: capture('log') } as unknown as Logger);
  const SLOW_MS = 300;
  // A parameter value that must never reach a log line.
  const secret = `s3cret-${randomBytes(12).toString('hex')}`;
  const pool = () => (source.driver as unknown as { master: { totalCount: number; idleCount: number; waitingCount: number } }).master;

  before(async () => {
    db = await temporaryDatabase('postgres');
    if (db.config.driver !== 'postgres') throw new Error('expected PostgreSQL');
    source = await new DataSource({ type: 'postgres', url: db.config.url, poolSize: 1, logger, maxQueryExecutionTime: SLOW_MS }).initialize();
    await source.query('CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL)');
    await source.query("INSERT INTO things VALUES (1, 'one'), (2, 'two')");
    t = new TypeOrmTransactions(source);
  });

  after(async () => {
    await source?.destroy();
    await db?.drop();
  });

  /** How a statement failed: the error, the Database lines, the problem answered and what the problem filter logged. */
  const failure = async (run: () => Promise<unknown>) => {
    lines.length = 0;
    const error = await run().then(() => assert.fail('the statement should have failed'), (err: unknown) => err as Error);
    const unhandled: string[] = [];
    const problem = toProblem(error, 'request-1', { error: (message: string) => void unhandled.push(message) } as unknown as Logger);
    // The connection is back in the pool (or gone from it): nothing is held.
    assert.equal(pool().idleCount, pool().totalCount, 'a connection is still checked out');
    return { error, lines: [...lines], problem, unhandled };
  };

  const assertSameFailure = (ordinary: Awaited<ReturnType<typeof failure>>, prepared: Awaited<ReturnType<typeof failure>>, code: string | undefined) => {
    assert.equal(prepared.error.constructor, ordinary.error.constructor);
    assert.equal(prepared.error.message, ordinary.error.message);
    assert.equal((prepared.error as { code?: string }).code, code);
    assert.equal((ordinary.error as { code?: string }).code, code);
    assert.deepEqual(prepared.lines, ordinary.lines);
    assert.deepEqual(prepared.problem, ordinary.problem);
    // The stack's first line: the error's class and message.
    assert.deepEqual(prepared.unhandled.map((line) => line.split('\n')[0]), ordinary.unhandled.map((line) => line.split('\n')[0]));
    for (const line of [...prepared.lines, ...prepared.unhandled]) assert.ok(!line.includes(secret), `a parameter value was logged: ${line}`);
  };

  it('a statement PostgreSQL refuses (at parse or at execution): QueryFailedError, logged once without its values, in a transaction too', async () => {
    const statements: [string, unknown[], string][] = [
      ['SELECT name FROM things WHERE id = 1 / ?::int AND name <> ?', [0, secret], '22012'],
      ['SELECT nope FROM things WHERE name <> ?', [secret], '42703'],
    ];
    for (const [text, params, code] of statements) {
      const ordinary = await failure(() => t.sql(text, params));
      const prepared = await failure(() => t.sql(text, params, { prepared: 'test' }));
      assert.ok(prepared.error instanceof QueryFailedError, `${prepared.error.constructor.name}: ${prepared.error.message}`);
      assertSameFailure(ordinary, prepared, code);
      assert.equal(prepared.lines.length, 1);
      assert.match(prepared.lines[0], /^error: query failed: /);
      assert.deepEqual(prepared.problem, ordinary.problem);
      assert.equal(prepared.problem.status, 500);
      assertSameFailure(await failure(() => t.run(() => t.sql(text, params))), await failure(() => t.run(() => t.sql(text, params, { prepared: 'test' }))), code);
    }
    // The connection still answers, the named statement included.
    assert.deepEqual(await t.sql('SELECT name FROM things WHERE id = 1 / ?::int AND name <> ?', [1, secret], { prepared: 'test' }), [{ name: 'one' }]);
  });

  it('a backend terminated under the statement: the same error, the broken connection out of the pool', async () => {
    const text = 'SELECT pg_terminate_backend(pg_backend_pid()) AS gone FROM things WHERE id = 1 AND name <> ?';
    // The runner gives the connection back when the error arrives, before pg sees the socket close: the pool drops it
    // a moment later (until then the next query would get it and fail as "Connection terminated unexpectedly").
    const dropped = () => eventually('the pool dropped the terminated connection', () => pool().totalCount === 0, 5000);
    const ordinary = await failure(() => t.sql(text, [secret]));
    await dropped();
    const prepared = await failure(() => t.sql(text, [secret], { prepared: 'test' }));
    await dropped();
    assert.ok(prepared.error instanceof QueryFailedError, `${prepared.error.constructor.name}: ${prepared.error.message}`);
    assertSameFailure(ordinary, prepared, (ordinary.error as { code?: string }).code);
    // poolSize 1: a connection left checked out, or a broken one put back, would fail or hang this.
    assert.deepEqual(await t.sql('SELECT name FROM things WHERE id = ?', [2], { prepared: 'test' }), [{ name: 'two' }]);
  });

  it('the database refusing connections: the same error as the unnamed statement, nothing left checked out', async () => {
    const name = new URL(db.config.driver === 'postgres' ? db.config.url : '').pathname.slice(1);
    const admin = new Client({ connectionString: process.env[PG_ENV] });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      await eventually('the pool dropped its terminated connection', () => pool().totalCount === 0, 5000);
      const text = 'SELECT name FROM things WHERE name <> ?';
      const ordinary = await failure(() => t.sql(text, [secret]));
      const prepared = await failure(() => t.sql(text, [secret], { prepared: 'test' }));
      assertSameFailure(ordinary, prepared, '55000');
    } finally {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    assert.deepEqual(await t.sql('SELECT name FROM things WHERE id = ?', [1], { prepared: 'test' }), [{ name: 'one' }]);
  });

  it('a slow statement is logged as slow, without its values', async () => {
    const text = `SELECT pg_sleep(${(SLOW_MS + 200) / 1000}) IS NULL AS slept FROM things WHERE id = 1 AND name <> ?`;
    const slowLines = async (run: () => Promise<unknown>) => {
      lines.length = 0;
      await run();
      return lines.map((line) => line.replace(/\(\d+ ms\)/, '(N ms)'));
    };
    const ordinary = await slowLines(() => t.sql(text, [secret]));
    const prepared = await slowLines(() => t.sql(text, [secret], { prepared: 'test' }));
    assert.deepEqual(prepared, ordinary);
    assert.equal(prepared.length, 1);
    assert.match(prepared[0], /^warn: slow query \(N ms\): SELECT pg_sleep/);
    assert.ok(!prepared[0].includes(secret));
  });

  it('a changed text is another statement: its name comes from the text, so instances on one pool never collide', async () => {
    const [a, b] = [new TypeOrmTransactions(source), new TypeOrmTransactions(source)];
    const text = 'SELECT name FROM things WHERE id = ?::int';
    const changed = 'SELECT name FROM things WHERE id = ?::int + 1';
    // One pooled connection: each instance's first text would have the same name if names were counted per instance.
    assert.deepEqual(await a.sql(text, [1], { prepared: 'test' }), [{ name: 'one' }]);
    assert.deepEqual(await b.sql(changed, [1], { prepared: 'test' }), [{ name: 'two' }]);
    assert.deepEqual(await b.sql(text, [2], { prepared: 'test' }), [{ name: 'two' }]);
    const rows = await source.query<{ name: string; statement: string }[]>("SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'fleet_pki_%'");
    const named = new Map(rows.map((row) => [row.statement, row.name]));
    assert.ok(named.get(text.replace('?', '$1')) && named.get(changed.replace('?', '$1')));
    assert.notEqual(named.get(text.replace('?', '$1')), named.get(changed.replace('?', '$1')));
  });

  it('after its transaction ended, a read of it is refused: never run on a connection given back to the pool', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let ordinary!: Promise<unknown>;
    let prepared!: Promise<unknown>;
    await t.run(async () => {
      // Started in the transaction, run after it committed (the async context is the transaction's).
      ordinary = gate.then(() => t.sql('SELECT name FROM things WHERE id = ?', [1]));
      prepared = gate.then(() => t.sql('SELECT name FROM things WHERE id = ?', [1], { prepared: 'test' }));
    });
    open();
    const [o, p] = await Promise.allSettled([ordinary, prepared]);
    assert.equal(o.status, 'rejected');
    assert.equal(p.status, 'rejected', 'the prepared read ran on a connection its transaction had given back');
    const reason = (r: PromiseSettledResult<unknown>) => (r as PromiseRejectedResult).reason as Error;
    assert.equal(reason(p).constructor, reason(o).constructor);
    assert.equal(reason(p).message, reason(o).message);
  });
});
