/**
 * Port: runs work in one database transaction. Repositories called inside `run` join it, so a state
 * change and its audit event commit or roll back together. Nested calls join the outer transaction.
 */
export abstract class Transactions {
  abstract run<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Runs `callback` once the current transaction has committed (not at all if it rolls back), before `run`
   * returns; outside a transaction, at once. For in-memory state that must follow committed data only. The
   * callback must not throw.
   */
  abstract afterCommit(callback: () => void): void;
}
