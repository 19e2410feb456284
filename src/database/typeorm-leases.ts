import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { Leases } from '../common/pacing';

/**
 * Leases on periodic work in the work_leases table (docs/limits.md, "Periodic work"), for both drivers. Taking is one
 * atomic UPSERT that succeeds only when the row is absent, expired or already ours; the expiry is in the database's
 * clock on PostgreSQL (replicas' clocks may differ), in this process's on SQLite (one process writes it).
 */
export class TypeOrmLeases extends Leases {
  /** This process: host, pid and a random part (a restarted process with the same pid is another holder). */
  readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  constructor(private readonly dataSource: DataSource) {
    super();
  }

  async take(name: string, ttlMs: number): Promise<boolean> {
    if (this.dataSource.options.type === 'postgres') {
      const rows: { holder: string }[] = await this.dataSource.query(
        `WITH c AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now)
         INSERT INTO work_leases AS l (name, holder, expires_at_ms) SELECT $1, $2, c.now + $3 FROM c
         ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at_ms = EXCLUDED.expires_at_ms
         WHERE l.holder = EXCLUDED.holder OR l.expires_at_ms < (SELECT now FROM c)
         RETURNING l.holder`,
        [name, this.holder, ttlMs],
      );
      return rows.length === 1;
    }
    const now = Date.now();
    await this.dataSource.query(
      `INSERT INTO work_leases (name, holder, expires_at_ms) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
       WHERE work_leases.holder = excluded.holder OR work_leases.expires_at_ms < ?`,
      [name, this.holder, now + ttlMs, now],
    );
    const rows: { holder: string }[] = await this.dataSource.query(`SELECT holder FROM work_leases WHERE name = ?`, [name]);
    return rows[0]?.holder === this.holder;
  }

  /** Gives the lease up (on shutdown), so another replica takes the work at its next check. */
  async release(name: string): Promise<void> {
    const postgres = this.dataSource.options.type === 'postgres';
    await this.dataSource.query(`DELETE FROM work_leases WHERE name = ${postgres ? '$1' : '?'} AND holder = ${postgres ? '$2' : '?'}`, [name, this.holder]);
  }
}
