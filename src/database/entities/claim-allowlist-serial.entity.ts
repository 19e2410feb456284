import { Entity, PrimaryColumn } from 'typeorm';

/** One B-tree keyed by (list, serial) on SQLite (WITHOUT ROWID): half the writes of a rowid table plus its key index. */
@Entity('claim_allowlist_serials', { withoutRowid: true })
export class ClaimAllowlistSerialEntity {
  @PrimaryColumn({ name: 'allowlist_id', type: 'integer' }) allowlistId: number;
  @PrimaryColumn({ name: 'device_serial', type: 'varchar', length: 64 }) deviceSerial: string;
}
