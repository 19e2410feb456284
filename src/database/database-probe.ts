import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Whether the database answers (readiness): one trivial query, outside any transaction. */
@Injectable()
export class DatabaseProbe {
  constructor(private readonly dataSource: DataSource) {}

  async reachable(): Promise<boolean> {
    try {
      await this.dataSource.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }
}
