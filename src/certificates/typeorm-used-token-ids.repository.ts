import { Injectable } from '@nestjs/common';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { UsedTokenIds } from './used-token-ids.repository';

@Injectable()
export class TypeOrmUsedTokenIds extends UsedTokenIds {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async use(id: string, keepUntil: string): Promise<boolean> {
    // ON CONFLICT rather than catching the violation: on PostgreSQL a failed statement would poison a surrounding transaction.
    const insert = () => this.db.sql('INSERT INTO used_token_ids (id, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING id', [id, keepUntil]);
    // PostgreSQL: one statement is a transaction of its own. SQLite: on its one connection a bare statement would
    // join whatever transaction another request has open (and vanish if that one rolled back): a grouped one instead.
    const rows = await (this.db.isPostgres ? insert() : this.db.runGrouped(insert));
    return rows.length === 1;
  }

  async prune(now: string, limit: number): Promise<number> {
    // One bounded batch (the Pruner loops); grouped on SQLite for the reason given in use().
    const remove = () => this.db.sql(`DELETE FROM used_token_ids WHERE id IN (SELECT id FROM used_token_ids WHERE expires_at < ? LIMIT ${Number(limit)}) RETURNING id`, [now]);
    return (await (this.db.isPostgres ? remove() : this.db.runGrouped(remove))).length;
  }
}
