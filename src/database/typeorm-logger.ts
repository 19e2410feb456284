import { Logger as NestLogger } from '@nestjs/common';
import { Logger as TypeOrmLoggerPort } from 'typeorm';
import { isUniqueViolation } from './errors';

/**
 * TypeORM's own loggers print query parameters with failures; ours may be API key hashes or sealed CA keys.
 * This one logs the failure and the SQL text only, never the values.
 */
export class TypeOrmLogger implements TypeOrmLoggerPort {
  /** `logger`: where the lines go (the application's 'Database' logger; a test's capture). */
  constructor(private readonly logger: Pick<NestLogger, 'debug' | 'error' | 'warn' | 'log'> = new NestLogger('Database')) {}

  logQuery(): void {}

  /**
   * A unique violation is how the database settles a race that callers expect and handle (two exchanges of one
   * serial, one Idempotency-Key twice, an authority key registered twice): debug, not error. One a caller does not
   * handle still reaches the error log, as the request's unhandled error.
   */
  logQueryError(error: string | Error, query: string): void {
    const message = typeof error === 'string' ? error : error.message;
    if (isUniqueViolation(error)) {
      // PostgreSQL's message names only the constraint; its error names the table (SQLite's message does both).
      const e = error as { table?: string; driverError?: { table?: string } };
      const table = e.driverError?.table ?? e.table;
      this.logger.debug(`unique constraint refused a write (left to the caller): ${message}${table ? ` on table ${table}` : ''} — ${query.slice(0, 200)}`);
    }
    else this.logger.error(`query failed: ${message} — ${query.slice(0, 500)}`);
  }

  logQuerySlow(time: number, query: string): void {
    this.logger.warn(`slow query (${time} ms): ${query.slice(0, 500)}`);
  }

  logSchemaBuild(): void {}

  logMigration(message: string): void {
    this.logger.log(message);
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.logger.warn(String(message));
  }
}
