/**
 * Port: runs work in one database transaction. Repositories called inside `run` join it, so a state
 * change and its audit event commit or roll back together. Nested calls join the outer transaction.
 */
export abstract class Transactions {
  abstract run<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Like `run`, but the transaction may be shared with other grouped work that arrives meanwhile: one commit for the
   * group (group commit, docs/architecture.md "Group commit"). Resolves only after that commit. When any work of a
   * group throws, the group rolls back and each of its works runs again in a transaction of its own, so one failure
   * never fails another: work must be safe to run twice up to its commit (database effects only; anything else goes
   * in `afterCommit`). Inside a transaction already, joins it as `run` does.
   */
  abstract runGrouped<T>(work: () => Promise<T>): Promise<T>;
  /**
   * A step every transaction of grouped work runs first on PostgreSQL, before the works (and before each work run again alone):
   * the audit service takes the chain head there, so that every grouped transaction takes its locks in one order,
   * head first, and two processes' groups cannot deadlock (docs/architecture.md, "Replicas").
   */
  abstract firstInGroupedTransactions(step: () => Promise<void>): void;
  /**
   * Runs reads that must not see other requests' uncommitted writes. On SQLite every request shares one connection,
   * so the reads run between its transactions, in their queue, while none is open; on PostgreSQL each query has a
   * pooled connection of its own and runs at once. Inside a transaction, joins it. `work` must only read: on SQLite
   * no transaction starts until it ends.
   */
  abstract readCommitted<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Runs `callback` once the current transaction has committed (not at all if it rolls back), before `run`
   * returns; outside a transaction, at once. For in-memory state that must follow committed data only. The
   * callback must not throw.
   */
  abstract afterCommit(callback: () => void): void;
  /**
   * Runs `callback` inside the current transaction after its work, just before the commit (in the order given);
   * a throw rolls the transaction back. For writes that are cheaper done once per transaction (audit appends).
   * Outside a transaction it throws.
   */
  abstract beforeCommit(callback: () => Promise<void>): void;
  /**
   * A value that lives as long as the current transaction: made by `create` on first use, the same object for every
   * later call with the same key in that transaction. Outside a transaction it throws.
   */
  abstract local<T>(key: symbol, create: () => T): T;
}
