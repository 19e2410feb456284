import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { Inject, Injectable, OnModuleDestroy, Optional } from '@nestjs/common';
import { DataSource, EntityManager, QueryFailedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import { isTransientConflict } from './errors';
import { Transactions } from './transactions';
import { SqliteWalConnection, SqliteWalSync } from './sqlite-wal-sync';
import { SqliteCheckpoints } from './sqlite-checkpoints';

/** The transaction in progress in this async context: its entity manager and what runs around its commit. */
interface TransactionScope {
  manager: EntityManager;
  afterCommit: (() => void)[];
  beforeCommit: (() => Promise<void>)[];
  locals: Map<symbol, unknown>;
}

/** Group commit bounds (docs/architecture.md, "Group commit"). */
export interface GroupCommitOptions {
  /** At most this many works share one transaction. */
  maxBatch: number;
  /**
   * How long an idle writer waits for company before it starts a group. 0: it starts at once, and works that
   * arrive while a group commits form the next group, so a group is as large as the load makes it.
   */
  maxWaitMs: number;
  /** Told the size of every group that committed (a metric). */
  observeGroup?: (size: number) => void;
}

export const GROUP_COMMIT_OPTIONS = Symbol('GROUP_COMMIT_OPTIONS');

const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxBatch: 128, maxWaitMs: 0 };

/** Tries of a grouped transaction that PostgreSQL aborts for a deadlock or serialization conflict. */
const GROUPED_ATTEMPTS = 3;

/** Prepared SQL text for one entity's table. */
interface Statements {
  table: string;
  selectList: string;
  columnList: string;
  insertSql: string;
  properties: string[];
}

/**
 * Distinct statement texts `sql` names as prepared statements on PostgreSQL, per family ({ prepared: 'family' }); each
 * keeps a plan in every pooled connection that ran it (~0.5 MB for the expiry search), so past this many texts of one
 * family the rest of that family run unnamed. A budget per family: a family whose text varies with its input (the
 * expiry search) can never take the names of another's (the API key lookup every request makes).
 */
const MAX_PREPARED_STATEMENTS_PER_FAMILY = 32;

/** The part of a pg client `sql` uses for a named prepared statement. */
interface PgClient {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/** Below both drivers' limit on bound parameters in one statement. */
const MAX_BOUND_PARAMETERS = 30_000;

/** How `sql` runs a statement. */
export interface SqlOptions {
  /**
   * PostgreSQL: as a named prepared statement (planned once per connection, not on every call), for a hot statement
   * whose planning is a large share of its cost. The value names the statement's family (its call site, e.g.
   * 'api-key-by-prefix'): each family names at most MAX_PREPARED_STATEMENTS_PER_FAMILY distinct texts. SQLite: no effect.
   */
  prepared?: string;
}

interface GroupedWork {
  work: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/** The Transactions port on TypeORM, with the plain-SQL helpers every TypeORM adapter uses. */
@Injectable()
export class TypeOrmTransactions extends Transactions implements OnModuleDestroy {
  private readonly current = new AsyncLocalStorage<TransactionScope>();
  /** better-sqlite3 has one connection: transactions from concurrent requests must take turns. */
  private sqliteTail: Promise<unknown> = Promise.resolve();
  private readonly statements = new Map<new () => object, Statements>();

  /** Grouped works waiting for the next group, and whether a group is being committed now (one at a time). */
  private readonly waiting: GroupedWork[] = [];
  private groupInFlight = false;
  /** Run first in every transaction of grouped work (firstInGroupedTransactions). */
  private readonly groupSteps: (() => Promise<void>)[] = [];

  /**
   * SQLite on a file: the WAL flushed after commits, and checkpointed, off the event loop (docs/architecture.md,
   * "Durable commits on SQLite"). Null on PostgreSQL and for an in-memory database.
   */
  private readonly walSync: SqliteWalSync | null;
  private readonly checkpoints: SqliteCheckpoints | null;

  constructor(
    private readonly dataSource: DataSource,
    @Optional() @Inject(GROUP_COMMIT_OPTIONS) private readonly groupCommit: GroupCommitOptions = DEFAULT_GROUP_COMMIT,
  ) {
    super();
    const connection = (dataSource.driver as unknown as { databaseConnection?: SqliteWalConnection }).databaseConnection;
    this.walSync = dataSource.options.type === 'better-sqlite3' && connection ? SqliteWalSync.forConnection(connection) : null;
    this.checkpoints = this.walSync && connection ? new SqliteCheckpoints(connection) : null;
  }

  /** The last commits flushed before TypeORM closes the connection (at application shutdown, after this). */
  async onModuleDestroy(): Promise<void> {
    await this.walSync?.close();
    await this.checkpoints?.close();
  }

  /**
   * The off-thread WAL checkpoints of the SQLite file's connection, and the owner of its `wal_autocheckpoint` (a CRL
   * store defers SQLite's own checkpoint through it); null on PostgreSQL and for an in-memory database.
   */
  get sqliteCheckpoints(): SqliteCheckpoints | null {
    return this.checkpoints;
  }

  get isPostgres(): boolean {
    return this.dataSource.options.type === 'postgres';
  }

  /** The entity manager of the transaction in progress, or the plain one outside a transaction. */
  manager(): EntityManager {
    return this.current.getStore()?.manager ?? this.dataSource.manager;
  }

  /**
   * Plain SQL for hot paths, skipping the query builder. Write `?` placeholders; they become `$1…` on
   * PostgreSQL. Booleans bind as 1/0 on SQLite. Runs in the current transaction when there is one.
   * Answers the rows (of a SELECT, or what RETURNING gives), the same on both drivers.
   */
  async sql<T = Record<string, unknown>>(text: string, params: unknown[] = [], options: SqlOptions = {}): Promise<T[]> {
    const postgres = this.isPostgres;
    let index = 0;
    const query = postgres ? text.replace(/\?/g, () => `$${++index}`) : text;
    const values = postgres ? params : params.map((value) => (typeof value === 'boolean' ? Number(value) : value));
    const name = postgres && options.prepared !== undefined ? this.statementName(options.prepared, query) : undefined;
    if (name !== undefined) return (await this.namedQuery(name, query, values)) as T[];
    const rows: unknown = await this.manager().query(query, values);
    if (!Array.isArray(rows)) return [];
    // TypeORM answers an UPDATE or DELETE on PostgreSQL with [rows, rowCount]: the rows are what RETURNING gave.
    if (postgres && rows.length === 2 && Array.isArray(rows[0]) && typeof rows[1] === 'number') return rows[0] as T[];
    return rows as T[];
  }

  /** Names of the statement texts run as prepared statements (statementName), and how many each family has. */
  private readonly statementNames = new Map<string, string>();
  private readonly namesPerFamily = new Map<string, number>();

  /**
   * The prepared statement's name for a PostgreSQL text: derived from the text, so every connection and every
   * instance on one pool agree; undefined once its family has MAX_PREPARED_STATEMENTS_PER_FAMILY texts with names.
   */
  private statementName(family: string, text: string): string | undefined {
    let name = this.statementNames.get(text);
    const named = this.namesPerFamily.get(family) ?? 0;
    if (name === undefined && named < MAX_PREPARED_STATEMENTS_PER_FAMILY) {
      name = `fleet_pki_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      this.statementNames.set(text, name);
      this.namesPerFamily.set(family, named + 1);
    }
    return name;
  }

  /**
   * A named statement on the pg connection of the transaction in progress, or on one taken from the pool for it: pg
   * parses it once per connection, and PostgreSQL may then reuse one generic plan instead of planning every call.
   * It goes to the pg client itself (TypeORM's query runner takes no statement name), so this does what the runner's
   * query() does around it: a released runner refused, the failure logged (the logger never logs the values) and
   * thrown as TypeORM's QueryFailedError, a slow statement logged; same errors and log lines as an unnamed statement
   * (docs/architecture.md#prepared-statements). No subscribers listen to queries here: no query events.
   */
  private async namedQuery(name: string, text: string, values: unknown[]): Promise<unknown[]> {
    const inTransaction = this.current.getStore()?.manager.queryRunner;
    // Its transaction ended (work that outlived it): its connection is back in the pool, perhaps another request's.
    if (inTransaction?.isReleased) throw new QueryRunnerProviderAlreadyReleasedError();
    const runner = inTransaction ?? this.dataSource.createQueryRunner();
    try {
      const client = (await runner.connect()) as PgClient;
      const { logger, options } = this.dataSource;
      logger.logQuery(text, values, runner);
      const started = Date.now();
      let rows: unknown[];
      try {
        ({ rows } = await client.query({ name, text, values }));
      } catch (err) {
        logger.logQueryError(err as Error, text, values, runner);
        throw new QueryFailedError(text, values, err as Error);
      }
      const elapsed = Date.now() - started;
      if (options.maxQueryExecutionTime && elapsed > options.maxQueryExecutionTime) logger.logQuerySlow(elapsed, text, values, runner);
      return rows;
    } finally {
      // A connection that broke was given back by the runner already (and dropped by the pool): release() is then a no-op.
      if (!inTransaction) await runner.release();
    }
  }

  /** Rows of an entity's table matching a SQL condition, as entity-shaped objects (column → property). */
  async select<E extends object>(entity: new () => E, where: string, params: unknown[] = [], suffix = '', options: SqlOptions = {}): Promise<E[]> {
    const { table, selectList } = this.statementsFor(entity);
    return this.sql<E>(`SELECT ${selectList} FROM ${table} WHERE ${where}${suffix}`, params, options);
  }

  /** As select, with only the given properties' columns read. */
  async selectProperties<E extends object, K extends keyof E & string>(entity: new () => E, properties: readonly K[], where: string, params: unknown[] = [], suffix = '', options: SqlOptions = {}): Promise<Pick<E, K>[]> {
    const { table } = this.statementsFor(entity);
    const columns = new Map(this.dataSource.getMetadata(entity).columns.map((c) => [c.propertyName, c.databaseName]));
    const escape = (name: string) => this.dataSource.driver.escape(name);
    const selectList = properties.map((property) => {
      const column = columns.get(property);
      if (!column) throw new Error(`${entity.name} has no column for property ${property}`);
      return `${escape(column)} AS ${escape(property)}`;
    });
    return this.sql<Pick<E, K>>(`SELECT ${selectList.join(', ')} FROM ${table} WHERE ${where}${suffix}`, params, options);
  }

  /**
   * An entity's table name and the select list that reads its rows as entity-shaped objects, for a hand-written query.
   * With `alias`, the columns are qualified by it and each property is named `prefix` + property (for a join).
   */
  columnsOf(entity: new () => object, alias?: string, prefix = ''): { table: string; selectList: string } {
    const { table, selectList } = this.statementsFor(entity);
    if (alias === undefined) return { table, selectList };
    const escape = (name: string) => this.dataSource.driver.escape(name);
    const columns = this.dataSource.getMetadata(entity).columns;
    return { table, selectList: columns.map((c) => `${alias}.${escape(c.databaseName)} AS ${escape(prefix + c.propertyName)}`).join(', ') };
  }

  /** A page of an entity's rows in creation order (columns created_at, id), strictly after `after`. */
  async selectByCreation<E extends object>(entity: new () => E, after: { createdAt: string; id: string } | undefined, limit: number): Promise<E[]> {
    const order = ` ORDER BY created_at, id LIMIT ${Number(limit)}`;
    return after
      ? this.select(entity, '(created_at > ? OR (created_at = ? AND id > ?))', [after.createdAt, after.createdAt, after.id], order)
      : this.select(entity, '1 = 1', [], order);
  }

  /** Inserts one entity-shaped row with a single prepared INSERT. */
  async insert<E extends object>(entity: new () => E, row: E): Promise<void> {
    const { insertSql, properties } = this.statementsFor(entity);
    await this.sql(insertSql, properties.map((property) => (row as Record<string, unknown>)[property] ?? null));
  }

  /**
   * Inserts entity-shaped rows with multi-row INSERTs, in chunks that stay under both drivers' limit on bound
   * parameters (PostgreSQL 65,535; SQLite 32,766).
   */
  async insertMany<E extends object>(entity: new () => E, rows: E[]): Promise<void> {
    const { table, columnList, properties } = this.statementsFor(entity);
    const rowsPerStatement = Math.max(1, Math.floor(MAX_BOUND_PARAMETERS / properties.length));
    const placeholders = `(${properties.map(() => '?').join(', ')})`;
    for (let start = 0; start < rows.length; start += rowsPerStatement) {
      const chunk = rows.slice(start, start + rowsPerStatement);
      const params = chunk.flatMap((row) => properties.map((property) => (row as Record<string, unknown>)[property] ?? null));
      await this.sql(`INSERT INTO ${table} (${columnList}) VALUES ${chunk.map(() => placeholders).join(', ')}`, params);
    }
  }

  /**
   * The text and parameters of one multi-row INSERT of entity-shaped rows (`?` placeholders, as `sql` takes them),
   * for a caller that sends it inside a statement of its own. At most MAX_BOUND_PARAMETERS parameters: see insertMany.
   */
  insertManySql<E extends object>(entity: new () => E, rows: E[]): { text: string; params: unknown[] } {
    const { table, columnList, properties } = this.statementsFor(entity);
    if (rows.length * properties.length > MAX_BOUND_PARAMETERS) throw new Error(`${rows.length} rows of ${table} exceed one statement's parameters`);
    const placeholders = `(${properties.map(() => '?').join(', ')})`;
    return {
      text: `INSERT INTO ${table} (${columnList}) VALUES ${rows.map(() => placeholders).join(', ')}`,
      params: rows.flatMap((row) => properties.map((property) => (row as Record<string, unknown>)[property] ?? null)),
    };
  }

  private statementsFor(entity: new () => object): Statements {
    let statements = this.statements.get(entity);
    if (!statements) {
      const metadata = this.dataSource.getMetadata(entity);
      const escape = (name: string) => this.dataSource.driver.escape(name);
      const columns = metadata.columns;
      const table = escape(metadata.tableName);
      statements = {
        table,
        selectList: columns.map((c) => `${escape(c.databaseName)} AS ${escape(c.propertyName)}`).join(', '),
        columnList: columns.map((c) => escape(c.databaseName)).join(', '),
        insertSql: `INSERT INTO ${table} (${columns.map((c) => escape(c.databaseName)).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
        properties: columns.map((c) => c.propertyName),
      };
      this.statements.set(entity, statements);
    }
    return statements;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    return this.current.getStore() ? work() : this.transaction(work).durable;
  }

  /**
   * A transaction of its own: `committed` settles when the COMMIT has run (and the afterCommit callbacks with it),
   * `durable` once the commit is also on stable storage (SQLite: the WAL flushed off the event loop, SqliteWalSync;
   * PostgreSQL's COMMIT is durable itself). On SQLite the next transaction may start at `committed`.
   */
  private transaction<T>(work: () => Promise<T>): { committed: Promise<T>; durable: Promise<T> } {
    const scope: TransactionScope = { manager: this.dataSource.manager, afterCommit: [], beforeCommit: [], locals: new Map() };
    const commit = async () => {
      const result = await this.dataSource.transaction((manager) => {
        scope.manager = manager;
        return this.current.run(scope, async () => {
          const value = await work();
          // Callbacks may register more callbacks: read the length on every turn.
          for (let i = 0; i < scope.beforeCommit.length; i++) await scope.beforeCommit[i]();
          return value;
        });
      });
      for (const callback of scope.afterCommit) callback();
      const checkpoints = this.checkpoints;
      if (checkpoints?.due()) {
        // Its second checkpoint takes the next free turn: no commit runs while it copies the rest (SqliteCheckpoints).
        void checkpoints.cycle((step) => {
          const turn = this.sqliteTail.then(step);
          this.sqliteTail = turn.catch(() => undefined);
          return turn;
        });
      }
      return result;
    };
    if (this.isPostgres) {
      const committed = commit();
      return { committed, durable: committed };
    }
    // better-sqlite3 has one connection: transactions from concurrent requests take turns.
    const committed = this.sqliteTail.then(commit, commit);
    this.sqliteTail = committed.catch(() => undefined);
    const walSync = this.walSync;
    return { committed, durable: walSync ? committed.then(async (result) => (await walSync.durable(), result)) : committed };
  }

  runGrouped<T>(work: () => Promise<T>): Promise<T> {
    if (this.current.getStore()) return work();
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.groupInFlight) this.startGroup();
    });
  }

  firstInGroupedTransactions(step: () => Promise<void>): void {
    this.groupSteps.push(step);
  }

  /**
   * A transaction of grouped work: the first steps, then `work`. On PostgreSQL a transaction aborted by a deadlock or a
   * serialization conflict (another process's transaction that took its locks in another order) runs again, up to
   * GROUPED_ATTEMPTS times, instead of failing a request that did nothing wrong: grouped work may run twice.
   */
  private groupedTransaction<T>(work: () => Promise<T>): { committed: Promise<T>; durable: Promise<T> } {
    // SQLite: one process, one connection, no other transaction to deadlock with.
    if (!this.isPostgres) return this.transaction(work);
    const durable = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.run(async () => {
            for (const step of this.groupSteps) await step();
            return work();
          });
        } catch (err) {
          if (attempt >= GROUPED_ATTEMPTS || !isTransientConflict(err)) throw err;
        }
      }
    })();
    return { committed: durable, durable };
  }

  readCommitted<T>(work: () => Promise<T>): Promise<T> {
    if (this.isPostgres || this.current.getStore()) return work();
    // SQLite: between two transactions of the one connection, in their queue (none opens before the reads end), so
    // no other request's uncommitted rows are in view; no BEGIN or COMMIT, and no wait for a group to form.
    const result = this.sqliteTail.then(work, work);
    this.sqliteTail = result.catch(() => undefined);
    return result;
  }

  /**
   * One group at a time: the audit chain head (locked by every audited change) serialises writers anyway, and on
   * SQLite there is one connection. While a group commits, the works that arrive form the next one.
   */
  private startGroup(): void {
    this.groupInFlight = true;
    const { maxWaitMs, maxBatch } = this.groupCommit;
    const go = () =>
      void this.commitGroup(this.waiting.splice(0, maxBatch)).finally(() => {
        if (this.waiting.length > 0) this.startGroup();
        else this.groupInFlight = false;
      });
    // setImmediate: works already parsed in this turn of the event loop join the group at no cost in latency.
    if (maxWaitMs > 0 && this.waiting.length < maxBatch) setTimeout(go, maxWaitMs);
    else setImmediate(go);
  }

  /** Commits a group; settles when the next group may start (SQLite: at the commit, before the WAL flush). */
  private async commitGroup(group: GroupedWork[]): Promise<void> {
    const { committed, durable } = this.groupedTransaction(async () => {
      const out: unknown[] = [];
      for (const member of group) out.push(await member.work());
      return out;
    });
    try {
      await committed;
    } catch (err) {
      durable.catch(() => undefined);
      if (group.length === 1) return group[0].reject(err);
      // Something in the group failed and rolled all of it back: each work runs again alone, so exactly the
      // works that fail alone fail (the error they would have had without grouping), and the others commit.
      await Promise.all(group.map((member) => this.groupedTransaction(member.work).durable.then(member.resolve, member.reject)));
      return;
    }
    this.groupCommit.observeGroup?.(group.length);
    durable.then(
      (results) => group.forEach((member, i) => member.resolve(results[i])),
      (err: unknown) => group.forEach((member) => member.reject(err)),
    );
  }

  afterCommit(callback: () => void): void {
    const scope = this.current.getStore();
    if (scope) scope.afterCommit.push(callback);
    else callback();
  }

  beforeCommit(callback: () => Promise<void>): void {
    this.scope('beforeCommit').beforeCommit.push(callback);
  }

  local<T>(key: symbol, create: () => T): T {
    const locals = this.scope('local').locals;
    if (!locals.has(key)) locals.set(key, create());
    return locals.get(key) as T;
  }

  private scope(what: string): TransactionScope {
    const scope = this.current.getStore();
    if (!scope) throw new Error(`${what}() needs a transaction`);
    return scope;
  }
}
