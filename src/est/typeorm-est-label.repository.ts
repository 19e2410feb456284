import { Injectable } from '@nestjs/common';
import { Allocation } from '../common/allocation';
import { EstLabelEntity } from '../database/entities/est-label.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { EstKeySpec, EstLabel, EstLabelAttestation, labelTarget } from './est-label';
import { EstLabelRepository } from './est-label.repository';

@Injectable()
export class TypeOrmEstLabelRepository extends EstLabelRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async find(label: string): Promise<EstLabel | null> {
    const [row] = await this.db.select(EstLabelEntity, 'label = ?', [label]);
    return row ? toLabel(row) : null;
  }

  async list(): Promise<EstLabel[]> {
    return (await this.db.select(EstLabelEntity, '1 = 1', [], ' ORDER BY label')).map(toLabel);
  }

  async insert(label: EstLabel): Promise<void> {
    await this.db.insert(EstLabelEntity, {
      label: label.label,
      kind: label.kind,
      ...labelTarget(label),
      keySpec: label.keySpec,
      serverKeygen: label.serverKeygen,
      attestation: label.attestation,
      allocation: label.allocation ? JSON.stringify(label.allocation) : null,
      createdAt: label.createdAt,
    });
  }

  async delete(label: string): Promise<boolean> {
    const rows = await this.db.sql('DELETE FROM est_labels WHERE label = ? RETURNING label', [label]);
    return rows.length > 0;
  }
}

function toLabel(row: EstLabelEntity): EstLabel {
  const common = { label: row.label, keySpec: row.keySpec as EstKeySpec, serverKeygen: Boolean(row.serverKeygen), attestation: (row.attestation ?? 'off') as EstLabelAttestation, allocation: row.allocation ? (JSON.parse(row.allocation) as Allocation) : null, createdAt: row.createdAt };
  return row.kind === 'claim'
    ? { ...common, kind: 'claim', claimId: row.claimId! }
    : { ...common, kind: 'authority', authorityId: row.authorityId!, profile: row.profile!, validityDays: row.validityDays === null ? null : Number(row.validityDays) };
}
