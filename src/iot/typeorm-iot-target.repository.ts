import { Injectable } from '@nestjs/common';
import { Like } from 'typeorm';
import { Errors } from '../common/errors';
import { CertificateEntity } from '../database/entities/certificate.entity';
import { EstLabelEntity } from '../database/entities/est-label.entity';
import { ClaimEntity } from '../database/entities/claim.entity';
import { IotCaRegistrationEntity } from '../database/entities/iot-ca-registration.entity';
import { IotTargetEntity } from '../database/entities/iot-target.entity';
import { isUniqueViolation } from '../database/errors';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { IotTarget } from './iot-target';
import { IotTargetRepository } from './iot-target.repository';

@Injectable()
export class TypeOrmIotTargetRepository extends IotTargetRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async list(): Promise<IotTarget[]> {
    const rows = await this.db.manager().find(IotTargetEntity, { order: { id: 'ASC' } });
    return rows.map(toTarget);
  }

  async find(id: string): Promise<IotTarget | null> {
    const row = await this.db.manager().findOneBy(IotTargetEntity, { id });
    return row ? toTarget(row) : null;
  }

  async insert(target: IotTarget): Promise<void> {
    try {
      await this.db.manager().insert(IotTargetEntity, {
        ...target,
        accountId: target.accountId!,
        createdAt: target.createdAt!,
        rateLimits: target.rateLimits ? JSON.stringify(target.rateLimits) : null,
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw Errors.iotTargetExists(`an IoT target named ${target.id} exists`);
      throw err;
    }
  }

  async delete(id: string): Promise<void> {
    await this.db.manager().delete(IotTargetEntity, { id });
  }

  async references(id: string): Promise<{ registrations: number; certificates: number; claims: number; estLabels: number }> {
    const m = this.db.manager();
    return {
      registrations: await m.countBy(IotCaRegistrationEntity, { targetId: id }),
      certificates: await m.countBy(CertificateEntity, { iotTargetId: id }),
      // Allocations are JSON; a quoted id inside one is a reference (ids are [a-z0-9-], so no LIKE wildcard).
      claims: await m.countBy(ClaimEntity, { allocation: Like(`%"${id}"%`) }),
      estLabels: await m.countBy(EstLabelEntity, { allocation: Like(`%"${id}"%`) }),
    };
  }
}

function toTarget(row: IotTargetEntity): IotTarget {
  return { ...row, rateLimits: row.rateLimits ? (JSON.parse(row.rateLimits) as Record<string, number>) : null };
}
