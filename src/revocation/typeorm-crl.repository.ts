import { Injectable } from '@nestjs/common';
import { LessThan } from 'typeorm';
import { CrlEntity } from '../database/entities/crl.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { CrlRepository, StoredCrl } from './crl.repository';

@Injectable()
export class TypeOrmCrlRepository extends CrlRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async latest(authorityId: string): Promise<StoredCrl | null> {
    const row = await this.db.manager().findOne(CrlEntity, { where: { authorityId }, order: { crlNumber: 'DESC' } });
    return row
      ? { ...row, crlNumber: Number(row.crlNumber), revocationsCovered: Number(row.revocationsCovered), der: Buffer.from(row.der, 'base64') }
      : null;
  }

  async insert(crl: StoredCrl): Promise<void> {
    await this.db.manager().insert(CrlEntity, { ...crl, der: crl.der.toString('base64') });
  }

  async prune(authorityId: string, belowNumber: number): Promise<void> {
    await this.db.manager().delete(CrlEntity, { authorityId, crlNumber: LessThan(belowNumber) });
  }
}
