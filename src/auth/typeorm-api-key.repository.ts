import { Injectable } from '@nestjs/common';
import { IsNull } from 'typeorm';
import { ApiKeyEntity } from '../database/entities/api-key.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { ApiKeyRecord, ApiKeyRepository } from './api-key.repository';
import { Role } from '../common/roles';

@Injectable()
export class TypeOrmApiKeyRepository extends ApiKeyRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(record: ApiKeyRecord): Promise<void> {
    await this.db.insert(ApiKeyEntity, record);
  }

  /** Runs on every authenticated request: one prepared SELECT, no query builder. */
  async findByPrefix(prefix: string): Promise<ApiKeyRecord | null> {
    // Every authenticated request reads its key: planned once per connection (TypeOrmTransactions.sql, { prepared }).
    const [row] = await this.db.select(ApiKeyEntity, 'prefix = ?', [prefix], '', { prepared: 'api-key-by-prefix' });
    return toRecord(row ?? null);
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    return toRecord(await this.db.manager().findOneBy(ApiKeyEntity, { id }));
  }

  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.db.manager().find(ApiKeyEntity, { order: { createdAt: 'ASC', id: 'ASC' } });
    return rows.map((row) => toRecord(row)!);
  }

  count(): Promise<number> {
    return this.db.manager().count(ApiKeyEntity);
  }

  async markRevoked(id: string, revokedAt: string): Promise<boolean> {
    const result = await this.db.manager().update(ApiKeyEntity, { id, revokedAt: IsNull() }, { revokedAt });
    return (result.affected ?? 0) > 0;
  }
}

function toRecord(row: ApiKeyEntity | null): ApiKeyRecord | null {
  return row ? { ...row, role: row.role as Role } : null;
}
