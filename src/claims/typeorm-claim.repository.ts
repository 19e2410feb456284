import { Injectable } from '@nestjs/common';
import { IotThingOptions } from '../certificates/certificate';
import { ClaimEntity, ProvisionedDeviceEntity } from '../database/entities';
import { TypeOrmTransactions } from '../database/transactions';
import { Claim, ClaimStatus, ProvisionedDevice } from './claim';
import { ClaimRepository } from './claim.repository';

/** Rows per multi-row INSERT of an allow-list (SQLite allows 32,766 bound parameters). */
const ALLOWLIST_INSERT_ROWS = 500;

@Injectable()
export class TypeOrmClaimRepository extends ClaimRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(claim: Claim): Promise<void> {
    await this.db.insert(ClaimEntity, { ...claim, iot: claim.iot ? JSON.stringify(claim.iot) : null });
  }

  async findById(id: string): Promise<Claim | null> {
    const [row] = await this.db.select(ClaimEntity, 'id = ?', [id]);
    return row ? toClaim(row) : null;
  }

  async findByClaimCertificate(certificateId: string): Promise<Claim | null> {
    const [row] = await this.db.select(ClaimEntity, 'claim_certificate_id = ?', [certificateId]);
    return row ? toClaim(row) : null;
  }

  async list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Claim[]> {
    return (await this.db.selectByCreation(ClaimEntity, after, limit)).map(toClaim);
  }

  async takeSlot(id: string, at: string): Promise<boolean> {
    const rows = await this.db.sql(
      "UPDATE claims SET used = used + 1, last_exchange_at = ? WHERE id = ? AND status = 'active' AND used < max_devices RETURNING id",
      [at, id],
    );
    return rows.length === 1;
  }

  async touch(id: string, at: string): Promise<void> {
    await this.db.sql('UPDATE claims SET last_exchange_at = ? WHERE id = ?', [at, id]);
  }

  async markRevoked(id: string, at: string): Promise<boolean> {
    const rows = await this.db.sql("UPDATE claims SET status = 'revoked', revoked_at = ? WHERE id = ? AND status <> 'revoked' RETURNING id", [at, id]);
    return rows.length === 1;
  }

  async replaceAllowlist(id: string, batches: AsyncIterable<string[]> | Iterable<string[]>): Promise<number> {
    await this.db.sql('DELETE FROM claim_allowlist WHERE claim_id = ?', [id]);
    let size = 0;
    const flush = async (serials: string[]) => {
      if (serials.length === 0) return;
      // A serial listed twice counts once.
      const rows = await this.db.sql(
        `INSERT INTO claim_allowlist (claim_id, device_serial) VALUES ${serials.map(() => '(?, ?)').join(', ')} ON CONFLICT DO NOTHING RETURNING device_serial`,
        serials.flatMap((serial) => [id, serial]),
      );
      size += rows.length;
    };
    for await (const batch of batches) {
      for (let i = 0; i < batch.length; i += ALLOWLIST_INSERT_ROWS) await flush(batch.slice(i, i + ALLOWLIST_INSERT_ROWS));
    }
    await this.db.sql('UPDATE claims SET allowlist_size = ? WHERE id = ?', [size, id]);
    return size;
  }

  async isAllowed(id: string, deviceSerial: string): Promise<boolean> {
    const rows = await this.db.sql('SELECT 1 AS found FROM claim_allowlist WHERE claim_id = ? AND device_serial = ?', [id, deviceSerial]);
    return rows.length > 0;
  }

  async findProvisioned(claimId: string, deviceSerial: string): Promise<ProvisionedDevice | null> {
    const [row] = await this.db.select(ProvisionedDeviceEntity, 'claim_id = ? AND device_serial = ?', [claimId, deviceSerial]);
    return row ?? null;
  }

  async insertProvisioned(device: ProvisionedDevice): Promise<void> {
    await this.db.insert(ProvisionedDeviceEntity, device);
  }

  async replaceProvisioned(device: ProvisionedDevice): Promise<void> {
    await this.db.sql('UPDATE provisioned_devices SET certificate_id = ?, public_key_sha256 = ?, provisioned_at = ? WHERE claim_id = ? AND device_serial = ?', [
      device.certificateId,
      device.publicKeySha256,
      device.provisionedAt,
      device.claimId,
      device.deviceSerial,
    ]);
  }

  async findIdempotencyKey(claimId: string, key: string): Promise<{ requestSha256: string; certificateId: string } | null> {
    const [row] = await this.db.sql<{ requestSha256: string; certificateId: string }>(
      'SELECT request_sha256 AS "requestSha256", certificate_id AS "certificateId" FROM exchange_idempotency_keys WHERE claim_id = ? AND idempotency_key = ?',
      [claimId, key],
    );
    return row ?? null;
  }

  async insertIdempotencyKey(claimId: string, key: string, requestSha256: string, certificateId: string, at: string): Promise<void> {
    await this.db.sql('INSERT INTO exchange_idempotency_keys (claim_id, idempotency_key, request_sha256, certificate_id, created_at) VALUES (?, ?, ?, ?, ?)', [
      claimId,
      key,
      requestSha256,
      certificateId,
      at,
    ]);
  }

  async unrevokedCertificateIds(claimId: string): Promise<string[]> {
    const rows = await this.db.sql<{ id: string }>("SELECT id FROM certificates WHERE claim_id = ? AND status <> 'revoked' ORDER BY issued_at, id", [claimId]);
    return rows.map((row) => row.id);
  }
}

function toClaim(row: ClaimEntity): Claim {
  return {
    ...row,
    status: row.status as ClaimStatus,
    iot: row.iot ? (JSON.parse(row.iot) as IotThingOptions) : null,
    allowReprovisioning: Boolean(row.allowReprovisioning),
  };
}
