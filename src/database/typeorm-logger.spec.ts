import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Logger, LoggerService } from '@nestjs/common';
import type { Logger as TypeOrmLoggerPort } from 'typeorm';
import { TypeOrmLogger } from './typeorm-logger';

describe('TypeOrmLogger', () => {
  const lines: { level: string; message: string }[] = [];
  const capture: LoggerService = {
    log: (message: string) => lines.push({ level: 'log', message }),
    error: (message: string) => lines.push({ level: 'error', message }),
    warn: (message: string) => lines.push({ level: 'warn', message }),
    debug: (message: string) => lines.push({ level: 'debug', message }),
  };
  afterEach(() => {
    lines.length = 0;
    Logger.overrideLogger(false);
  });

  it('logs a unique violation (a race its caller settles) at debug, any other failure at error, never the parameters', () => {
    Logger.overrideLogger(capture);
    // As TypeORM calls it: with the query's parameters.
    const logger: TypeOrmLoggerPort = new TypeOrmLogger();
    const unique = Object.assign(new Error('UNIQUE constraint failed: provisioned_devices.claim_id, provisioned_devices.device_serial'), { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    // As pg reports it: the message names the constraint, the error's `table` the table.
    const duplicate = Object.assign(new Error('duplicate key value violates unique constraint "PK_x"'), { code: '23505', table: 'exchange_idempotency_keys' });
    const other = Object.assign(new Error('no such table: nope'), { code: 'SQLITE_ERROR' });
    const params = ['SECRET-SERIAL', 'secret-key-hash'];
    logger.logQueryError(unique, 'INSERT INTO provisioned_devices (claim_id, device_serial) VALUES (?, ?)', params);
    // A statement whose table is past the 200 characters of SQL logged: the line still names it.
    logger.logQueryError(duplicate, `WITH d AS (INSERT INTO provisioned_devices VALUES ($1)${' '.repeat(200)}), k AS (INSERT INTO exchange_idempotency_keys VALUES ($2)) SELECT 1`, params);
    logger.logQueryError(other, 'SELECT * FROM nope WHERE id = ?', params);
    assert.deepEqual(lines.map((line) => line.level), ['debug', 'debug', 'error']);
    assert.match(lines[1].message, /PK_x" on table exchange_idempotency_keys — WITH/);
    for (const line of lines) assert.ok(!/SECRET|secret/.test(line.message), line.message);
  });
});
