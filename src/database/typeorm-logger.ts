import { Logger as NestLogger } from '@nestjs/common';
import { Logger as TypeOrmLoggerPort } from 'typeorm';

/**
 * TypeORM's own loggers print query parameters with failures; ours may be API key hashes or sealed CA keys.
 * This one logs the failure and the SQL text only, never the values.
 */
export class TypeOrmLogger implements TypeOrmLoggerPort {
  private readonly logger = new NestLogger('Database');

  logQuery(): void {}

  logQueryError(error: string | Error, query: string): void {
    this.logger.error(`query failed: ${typeof error === 'string' ? error : error.message} — ${query.slice(0, 500)}`);
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
