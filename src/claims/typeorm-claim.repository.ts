import type { Allocation } from '../iot/iot-target';
import { Injectable } from '@nestjs/common';
import { IotThingOptions } from '../certificates/certificate';
import { Errors } from '../common/errors';
import { ClaimEntity } from '../database/entities/claim.entity';
import { ExchangeIdempotencyKeyEntity } from '../database/entities/exchange-idempotency-key.entity';
import { ProvisionedDeviceEntity } from '../database/entities/provisioned-device.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { AttestationMode, Claim, ClaimStatus, ExchangeIdempotencyKey, ProvisionedDevice } from './claim';
import { ClaimRepository, EarlierExchange } from './claim.repository';

/** Rows per multi-row INSERT of an allow-list on SQLite (which allows 32,766 bound parameters). */
const ALLOWLIST_INSERT_ROWS = 500;

@Injectable()
export class TypeOrmClaimRepository extends ClaimRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(claim: Claim): Promise<void> {
    await this.db.insert(ClaimEntity, { ...claim, iot: claim.iot ? JSON.stringify(claim.iot) : null, allocation: claim.allocation ? JSON.stringify(claim.allocation) : null });
  }

  async findById(id: string): Promise<Claim | null> {
    const [row] = await this.db.select(ClaimEntity, 'id = ?', [id]);
    return row ? toClaim(row) : null;
  }

  async findByClaimCertificate(certificateId: string): Promise<Claim | null> {
    const [row] = await this.db.select(ClaimEntity, 'claim_certificate_id = ?', [certificateId]);
    return row ? toClaim(row) : null;
  }

  async findByClaimCertificateFingerprint(fingerprint: string): Promise<Claim | null> {
    // Fingerprints are unique (uq_certificates_fingerprint): the subquery gives at most one id.
    const [row] = await this.db.select(ClaimEntity, 'claim_certificate_id = (SELECT id FROM certificates WHERE fingerprint = ?)', [fingerprint]);
    return row ? toClaim(row) : null;
  }

  async list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Claim[]> {
    return (await this.db.selectByCreation(ClaimEntity, after, limit)).map(toClaim);
  }

  async takeSlots(id: string, count: number, at: string): Promise<boolean> {
    const rows = await this.db.sql(
      "UPDATE claims SET used = used + ?, last_exchange_at = ? WHERE id = ? AND status = 'active' AND used + ? <= max_devices RETURNING id",
      [count, at, id, count],
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

  async openAllowlist(claimId: string, at: string): Promise<number> {
    const [row] = await this.db.sql<{ id: number }>("INSERT INTO claim_allowlists (claim_id, status, size, created_at, updated_at) VALUES (?, 'staging', 0, ?, ?) RETURNING id", [
      claimId,
      at,
      at,
    ]);
    return Number(row.id);
  }

  async addToAllowlist(allowlistId: number, serials: string[], at: string): Promise<number> {
    let added = 0;
    // A serial listed twice counts once (ON CONFLICT DO NOTHING: only new rows come back).
    if (this.db.isPostgres) {
      // One round trip for the whole chunk: the serials travel as one array parameter.
      const inserted = await this.db.sql(
        'INSERT INTO claim_allowlist_serials (allowlist_id, device_serial) SELECT ?::integer, unnest(?::varchar[]) ON CONFLICT DO NOTHING RETURNING device_serial',
        [allowlistId, serials],
      );
      added = inserted.length;
    } else {
      for (let i = 0; i < serials.length; i += ALLOWLIST_INSERT_ROWS) {
        const rows = serials.slice(i, i + ALLOWLIST_INSERT_ROWS);
        const inserted = await this.db.sql(
          `INSERT INTO claim_allowlist_serials (allowlist_id, device_serial) VALUES ${rows.map(() => '(?, ?)').join(', ')} ON CONFLICT DO NOTHING RETURNING device_serial`,
          rows.flatMap((serial) => [allowlistId, serial]),
        );
        added += inserted.length;
      }
    }
    // Last, so that a list reclaimed meanwhile (no longer staging) rolls this chunk back with the transaction.
    const touched = await this.db.sql("UPDATE claim_allowlists SET size = size + ?, updated_at = ? WHERE id = ? AND status = 'staging' RETURNING id", [
      added,
      at,
      allowlistId,
    ]);
    if (touched.length !== 1) {
      throw Errors.allowlistUploadSuperseded('the upload was reclaimed as abandoned before it finished; nothing changed, upload the list again');
    }
    return added;
  }

  async activateAllowlist(claimId: string, allowlistId: number, at: string): Promise<number | null> {
    const [activated] = await this.db.sql<{ size: number }>(
      "UPDATE claim_allowlists SET status = 'active', updated_at = ? WHERE id = ? AND claim_id = ? AND status = 'staging' RETURNING size",
      [at, allowlistId, claimId],
    );
    if (!activated) return null;
    const size = Number(activated.size);
    // The claim row first: on PostgreSQL its lock orders concurrent activations for one claim, so the statement
    // below sees every list activated before and retires all but this one.
    await this.db.sql('UPDATE claims SET allowlist_id = ?, allowlist_size = ? WHERE id = ?', [allowlistId, size, claimId]);
    await this.db.sql("UPDATE claim_allowlists SET status = 'retired', updated_at = ? WHERE claim_id = ? AND status = 'active' AND id <> ?", [at, claimId, allowlistId]);
    return size;
  }

  async retireAllowlist(allowlistId: number, at: string): Promise<void> {
    await this.db.sql("UPDATE claim_allowlists SET status = 'retired', updated_at = ? WHERE id = ? AND status = 'staging'", [at, allowlistId]);
    await this.refreshPlannerStatistics();
  }

  async reclaimableAllowlists(staleBefore: string, at: string, limit: number): Promise<number[]> {
    await this.db.sql("UPDATE claim_allowlists SET status = 'retired', updated_at = ? WHERE status = 'staging' AND updated_at < ?", [at, staleBefore]);
    const rows = await this.db.sql<{ id: number }>(`SELECT id FROM claim_allowlists WHERE status = 'retired' ORDER BY updated_at, id LIMIT ${Number(limit)}`);
    if (rows.length > 0) await this.refreshPlannerStatistics();
    return rows.map((row) => Number(row.id));
  }

  /**
   * Before lists are purged, on PostgreSQL: a list loaded since autovacuum last analyzed the table is planned as if
   * it were tiny, and each chunk of the purge then sorts the whole list (about 150 ms a chunk for a million serials,
   * instead of 10). ANALYZE samples the table (about 100 ms) and the chunks use the primary key's order.
   */
  private async refreshPlannerStatistics(): Promise<void> {
    if (this.db.isPostgres) await this.db.sql('ANALYZE claim_allowlist_serials');
  }

  async purgeAllowlist(allowlistId: number, limit: number): Promise<number> {
    // Locked on PostgreSQL: concurrent purges of one list take turns, so each computes its bound after the previous
    // chunk committed. (Otherwise two could pick the same bound; the second would delete nothing and take the list
    // row away while serials above the bound remained, orphaned.) SQLite transactions take turns anyway.
    const lock = this.db.isPostgres ? ' FOR UPDATE' : '';
    const retired = await this.db.sql(`SELECT 1 AS found FROM claim_allowlists WHERE id = ? AND status = 'retired'${lock}`, [allowlistId]);
    if (retired.length === 0) return 0;
    // By key range (an index range on both drivers): the limit-th serial bounds this chunk.
    const [bound] = await this.db.sql<{ deviceSerial: string }>(
      'SELECT device_serial AS "deviceSerial" FROM claim_allowlist_serials WHERE allowlist_id = ? ORDER BY device_serial LIMIT 1 OFFSET ?',
      [allowlistId, limit - 1],
    );
    const deleted = bound
      ? await this.db.sql('DELETE FROM claim_allowlist_serials WHERE allowlist_id = ? AND device_serial <= ? RETURNING device_serial', [allowlistId, bound.deviceSerial])
      : await this.db.sql('DELETE FROM claim_allowlist_serials WHERE allowlist_id = ? RETURNING device_serial', [allowlistId]);
    // The list row goes last, and only once no serial of it is left (a second guard against orphans).
    if (deleted.length === 0) {
      await this.db.sql('DELETE FROM claim_allowlists WHERE id = ? AND NOT EXISTS (SELECT 1 FROM claim_allowlist_serials WHERE allowlist_id = ?)', [allowlistId, allowlistId]);
    }
    return deleted.length;
  }

  async isAllowed(id: string, deviceSerial: string): Promise<boolean> {
    const rows = await this.db.sql(
      'SELECT 1 AS found FROM claims c JOIN claim_allowlist_serials s ON s.allowlist_id = c.allowlist_id WHERE c.id = ? AND s.device_serial = ?',
      [id, deviceSerial],
    );
    return rows.length > 0;
  }

  async findProvisioned(claimId: string, deviceSerial: string): Promise<ProvisionedDevice | null> {
    const [row] = await this.db.select(ProvisionedDeviceEntity, 'claim_id = ? AND device_serial = ?', [claimId, deviceSerial]);
    return row ?? null;
  }

  async insertProvisionedMany(devices: ProvisionedDevice[]): Promise<void> {
    await this.db.insertMany(ProvisionedDeviceEntity, devices);
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

  async findEarlierExchange(claimId: string, deviceSerial: string, key: string | undefined): Promise<EarlierExchange> {
    if (key === undefined) return { earlier: null, existing: await this.findProvisioned(claimId, deviceSerial) };
    const rows = await this.db.sql<{ kind: string; requestSha256: string | null; certificateId: string; publicKeySha256: string | null; provisionedAt: string | null }>(
      `SELECT 'key' AS kind, request_sha256 AS "requestSha256", certificate_id AS "certificateId", NULL AS "publicKeySha256", NULL AS "provisionedAt"
         FROM exchange_idempotency_keys WHERE claim_id = ? AND idempotency_key = ?
       UNION ALL
       SELECT 'device', NULL, certificate_id, public_key_sha256, provisioned_at FROM provisioned_devices WHERE claim_id = ? AND device_serial = ?`,
      [claimId, key, claimId, deviceSerial],
    );
    const keyRow = rows.find((row) => row.kind === 'key');
    const deviceRow = rows.find((row) => row.kind === 'device');
    return {
      earlier: keyRow ? { requestSha256: keyRow.requestSha256!, certificateId: keyRow.certificateId } : null,
      existing: deviceRow ? { claimId, deviceSerial, certificateId: deviceRow.certificateId, publicKeySha256: deviceRow.publicKeySha256!, provisionedAt: deviceRow.provisionedAt! } : null,
    };
  }

  async insertIdempotencyKeys(keys: ExchangeIdempotencyKey[]): Promise<void> {
    await this.db.insertMany(ExchangeIdempotencyKeyEntity, keys);
  }

  async recordExchanges(devices: ProvisionedDevice[], slots: { claimId: string; count: number; at: string }[], keys: ExchangeIdempotencyKey[]): Promise<string[]> {
    if (!this.db.isPostgres || slots.length === 0) {
      // SQLite: statements cost no round trip there.
      if (devices.length > 0) await this.insertProvisionedMany(devices);
      const exhausted: string[] = [];
      for (const { claimId, count, at } of slots) if (!(await this.takeSlots(claimId, count, at))) exhausted.push(claimId);
      if (exhausted.length === 0 && keys.length > 0) await this.insertIdempotencyKeys(keys);
      return exhausted;
    }
    // PostgreSQL: one statement. The INSERTs run whatever the UPDATE finds; a claim short of slots rolls the caller's
    // transaction back with them.
    const parts: string[] = [];
    const params: unknown[] = [];
    for (const [name, insert] of [
      ['devices', devices.length > 0 ? this.db.insertManySql(ProvisionedDeviceEntity, devices) : undefined],
      ['idempotency_keys', keys.length > 0 ? this.db.insertManySql(ExchangeIdempotencyKeyEntity, keys) : undefined],
    ] as const) {
      if (!insert) continue;
      parts.push(`${name} AS (${insert.text})`);
      params.push(...insert.params);
    }
    const values = slots.map(() => '(?::varchar, ?::integer, ?::varchar)').join(', ');
    params.push(...slots.flatMap(({ claimId, count, at }) => [claimId, count, at]));
    const rows = await this.db.sql<{ id: string }>(
      `${parts.length > 0 ? `WITH ${parts.join(', ')} ` : ''}UPDATE claims SET used = used + s.n, last_exchange_at = s.at FROM (VALUES ${values}) AS s(id, n, at) ` +
        "WHERE claims.id = s.id AND claims.status = 'active' AND claims.used + s.n <= claims.max_devices RETURNING claims.id",
      params,
    );
    const taken = new Set(rows.map((row) => row.id));
    return slots.filter((slot) => !taken.has(slot.claimId)).map((slot) => slot.claimId);
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
    allocation: row.allocation ? (JSON.parse(row.allocation) as Allocation) : null,
    allowReprovisioning: Boolean(row.allowReprovisioning),
    attestation: (row.attestation ?? 'off') as AttestationMode,
  };
}
