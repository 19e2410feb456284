import { Injectable } from '@nestjs/common';
import { Errors } from '../common/errors';
import { IotCaRegistrationEntity } from '../database/entities/iot-ca-registration.entity';
import { isUniqueViolation } from '../database/errors';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { CertificateMode } from './iot-registry';
import { DeviceRegistration, IotCaRegistration } from './iot-registration';
import { IotRegistrationRepository } from './iot-registration.repository';
import { DEFAULT_TARGET_ID } from './iot-target';

@Injectable()
export class TypeOrmIotRegistrationRepository extends IotRegistrationRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  /** One SELECT by primary key (not a named prepared statement on PostgreSQL: only hot reads with few texts are, see TypeOrmTransactions.sql). */
  async find(authorityId: string, targetId: string = DEFAULT_TARGET_ID): Promise<IotCaRegistration | null> {
    const [row] = await this.db.select(IotCaRegistrationEntity, 'authority_id = ? AND target_id = ?', [authorityId, targetId]);
    return row ? toRegistration(row) : null;
  }

  async listFor(authorityId: string): Promise<IotCaRegistration[]> {
    const rows = await this.db.manager().find(IotCaRegistrationEntity, { where: { authorityId }, order: { targetId: 'ASC' } });
    return rows.map(toRegistration);
  }

  async findByCaCertificateId(caCertificateId: string): Promise<IotCaRegistration | null> {
    const row = await this.db.manager().findOneBy(IotCaRegistrationEntity, { caCertificateId });
    return row ? toRegistration(row) : null;
  }

  async listByCaCertificateId(caCertificateId: string): Promise<IotCaRegistration[]> {
    return (await this.db.manager().findBy(IotCaRegistrationEntity, { caCertificateId })).map(toRegistration);
  }

  async targetIds(): Promise<string[]> {
    const rows = await this.db.manager().createQueryBuilder(IotCaRegistrationEntity, 'r').select('DISTINCT r.target_id', 'targetId').orderBy('r.target_id').getRawMany<{ targetId: string }>();
    return rows.map((r) => r.targetId);
  }

  async insert(registration: IotCaRegistration): Promise<void> {
    try {
      await this.db.manager().insert(IotCaRegistrationEntity, {
        ...registration,
        provisioningTemplate: registration.provisioningTemplate ? JSON.stringify(registration.provisioningTemplate) : null,
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw Errors.iotAlreadyRegistered(`the authority is already registered with AWS IoT in target ${registration.targetId}`);
      throw err;
    }
  }

  async replaceInactive(registration: IotCaRegistration): Promise<boolean> {
    const { authorityId, targetId, ...fields } = registration;
    const result = await this.db.manager().update(
      IotCaRegistrationEntity,
      { authorityId, targetId, status: 'INACTIVE' },
      { ...fields, provisioningTemplate: registration.provisioningTemplate ? JSON.stringify(registration.provisioningTemplate) : null },
    );
    return (result.affected ?? 0) > 0;
  }

  async markInactive(authorityId: string, at: string, targetId: string = DEFAULT_TARGET_ID): Promise<boolean> {
    const result = await this.db.manager().update(IotCaRegistrationEntity, { authorityId, targetId, status: 'ACTIVE' }, { status: 'INACTIVE', autoRegistration: false, updatedAt: at });
    return (result.affected ?? 0) > 0;
  }

  countActiveJitr(): Promise<number> {
    return this.db.manager().countBy(IotCaRegistrationEntity, { deviceRegistration: 'jitr', status: 'ACTIVE' });
  }
}

function toRegistration(row: IotCaRegistrationEntity): IotCaRegistration {
  return {
    ...row,
    certificateMode: row.certificateMode as CertificateMode,
    status: row.status as IotCaRegistration['status'],
    autoRegistration: Boolean(row.autoRegistration),
    deviceRegistration: row.deviceRegistration as DeviceRegistration,
    provisioningTemplate: row.provisioningTemplate ? (JSON.parse(row.provisioningTemplate) as IotCaRegistration['provisioningTemplate']) : null,
  };
}
