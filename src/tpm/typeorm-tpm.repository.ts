import { Injectable } from '@nestjs/common';
import { TpmEnrollmentChallengeEntity } from '../database/entities/tpm-enrollment-challenge.entity';
import { TpmManufacturerRootEntity } from '../database/entities/tpm-manufacturer-root.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { TpmChallenge, TpmChallengeRepository, TpmManufacturerRoot, TpmRootRepository } from './tpm.repository';

@Injectable()
export class TypeOrmTpmRootRepository extends TpmRootRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async list(): Promise<TpmManufacturerRoot[]> {
    return (await this.db.select(TpmManufacturerRootEntity, '1 = 1', [], ' ORDER BY created_at, id')).map(toRoot);
  }

  async find(id: string): Promise<TpmManufacturerRoot | null> {
    const [row] = await this.db.select(TpmManufacturerRootEntity, 'id = ?', [id]);
    return row ? toRoot(row) : null;
  }

  async insert(root: TpmManufacturerRoot): Promise<void> {
    await this.db.insert(TpmManufacturerRootEntity, { ...root, certificateDer: root.certificateDer.toString('base64') });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.sql('DELETE FROM tpm_manufacturer_roots WHERE id = ? RETURNING id', [id])).length === 1;
  }
}

function toRoot(row: TpmManufacturerRootEntity): TpmManufacturerRoot {
  return { ...row, certificateDer: Buffer.from(row.certificateDer, 'base64') };
}

@Injectable()
export class TypeOrmTpmChallengeRepository extends TpmChallengeRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(challenge: TpmChallenge): Promise<void> {
    await this.db.insert(TpmEnrollmentChallengeEntity, {
      ...challenge,
      request: JSON.stringify(challenge.request),
      attestation: JSON.stringify(challenge.attestation),
    });
  }

  async find(id: string): Promise<TpmChallenge | null> {
    const [row] = await this.db.select(TpmEnrollmentChallengeEntity, 'id = ?', [id]);
    if (!row) return null;
    return { ...row, request: JSON.parse(row.request) as TpmChallenge['request'], attestation: JSON.parse(row.attestation) as TpmChallenge['attestation'] };
  }

  async consume(id: string, at: string): Promise<boolean> {
    return (await this.db.sql('UPDATE tpm_enrollment_challenges SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL RETURNING id', [at, id])).length === 1;
  }

  async prune(now: string, limit: number): Promise<number> {
    // One bounded batch (the Pruner loops); grouped on SQLite, whose one connection every writer takes in turn.
    const remove = () =>
      this.db.sql(`DELETE FROM tpm_enrollment_challenges WHERE id IN (SELECT id FROM tpm_enrollment_challenges WHERE expires_at < ? LIMIT ${Number(limit)}) RETURNING id`, [now]);
    return (await (this.db.isPostgres ? remove() : this.db.runGrouped(remove))).length;
  }
}
