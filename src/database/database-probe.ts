import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** The database's state for health and the setup check: whether it answers, and which migrations it has. */
@Injectable()
export class DatabaseProbe {
  constructor(private readonly dataSource: DataSource) {}

  /** One trivial query, outside any transaction; throws the driver's error when the database does not answer. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  async reachable(): Promise<boolean> {
    try {
      await this.ping();
      return true;
    } catch {
      return false;
    }
  }

  /** The migrations this version knows, and the ones the schema records as applied; throws when that table cannot be read. */
  async migrations(): Promise<{ known: string[]; applied: string[] }> {
    const table = this.dataSource.options.migrationsTableName ?? 'migrations';
    const rows = (await this.dataSource.query(`SELECT name FROM ${table}`)) as { name: string }[];
    return { known: this.dataSource.migrations.map((m) => m.name ?? m.constructor.name), applied: rows.map((row) => row.name) };
  }
}
