import { AsyncLocalStorage } from 'node:async_hooks';
import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { Transactions } from './transactions';

/** The transaction in progress in this async context: its entity manager and what runs after its commit. */
interface TransactionScope {
  manager: EntityManager;
  afterCommit: (() => void)[];
}

/** The Transactions port on TypeORM, with the plain-SQL helpers every TypeORM adapter uses. */
@Injectable()
export class TypeOrmTransactions extends Transactions {
  private readonly current = new AsyncLocalStorage<TransactionScope>();
  /** better-sqlite3 has one connection: transactions from concurrent requests must take turns. */
  private sqliteTail: Promise<unknown> = Promise.resolve();
  private readonly statements = new Map<new () => object, { table: string; selectList: string; insertSql: string; properties: string[] }>();

  constructor(private readonly dataSource: DataSource) {
    super();
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
  async sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    const postgres = this.isPostgres;
    let index = 0;
    const query = postgres ? text.replace(/\?/g, () => `$${++index}`) : text;
    const values = postgres ? params : params.map((value) => (typeof value === 'boolean' ? Number(value) : value));
    const rows: unknown = await this.manager().query(query, values);
    if (!Array.isArray(rows)) return [];
    // TypeORM answers an UPDATE or DELETE on PostgreSQL with [rows, rowCount]: the rows are what RETURNING gave.
    if (postgres && rows.length === 2 && Array.isArray(rows[0]) && typeof rows[1] === 'number') return rows[0] as T[];
    return rows as T[];
  }

  /** Rows of an entity's table matching a SQL condition, as entity-shaped objects (column → property). */
  async select<E extends object>(entity: new () => E, where: string, params: unknown[] = [], suffix = ''): Promise<E[]> {
    const { table, selectList } = this.statementsFor(entity);
    return this.sql<E>(`SELECT ${selectList} FROM ${table} WHERE ${where}${suffix}`, params);
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

  private statementsFor(entity: new () => object): { table: string; selectList: string; insertSql: string; properties: string[] } {
    let statements = this.statements.get(entity);
    if (!statements) {
      const metadata = this.dataSource.getMetadata(entity);
      const escape = (name: string) => this.dataSource.driver.escape(name);
      const columns = metadata.columns;
      const table = escape(metadata.tableName);
      statements = {
        table,
        selectList: columns.map((c) => `${escape(c.databaseName)} AS ${escape(c.propertyName)}`).join(', '),
        insertSql: `INSERT INTO ${table} (${columns.map((c) => escape(c.databaseName)).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
        properties: columns.map((c) => c.propertyName),
      };
      this.statements.set(entity, statements);
    }
    return statements;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    if (this.current.getStore()) return work();
    const afterCommit: (() => void)[] = [];
    const transaction = async () => {
      const result = await this.dataSource.transaction((manager) => this.current.run({ manager, afterCommit }, work));
      for (const callback of afterCommit) callback();
      return result;
    };
    if (this.isPostgres) return transaction();
    const result = this.sqliteTail.then(transaction, transaction);
    this.sqliteTail = result.catch(() => undefined);
    return result;
  }

  afterCommit(callback: () => void): void {
    const scope = this.current.getStore();
    if (scope) scope.afterCommit.push(callback);
    else callback();
  }
}
