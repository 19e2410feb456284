import { AsyncLocalStorage } from 'node:async_hooks';
import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/**
 * Port: runs work in one database transaction. Repositories called inside `run` join it, so a state
 * change and its audit event commit or roll back together. Nested calls join the outer transaction.
 */
export abstract class Transactions {
  abstract run<T>(work: () => Promise<T>): Promise<T>;
}

@Injectable()
export class TypeOrmTransactions extends Transactions {
  private readonly current = new AsyncLocalStorage<EntityManager>();
  /** better-sqlite3 has one connection: transactions from concurrent requests must take turns. */
  private sqliteTail: Promise<unknown> = Promise.resolve();

  constructor(private readonly dataSource: DataSource) {
    super();
  }

  get isPostgres(): boolean {
    return this.dataSource.options.type === 'postgres';
  }

  /** The entity manager of the transaction in progress, or the plain one outside a transaction. */
  manager(): EntityManager {
    return this.current.getStore() ?? this.dataSource.manager;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    if (this.current.getStore()) return work();
    const transaction = () => this.dataSource.transaction((manager) => this.current.run(manager, work));
    if (this.isPostgres) return transaction();
    const result = this.sqliteTail.then(transaction, transaction);
    this.sqliteTail = result.catch(() => undefined);
    return result;
  }
}
