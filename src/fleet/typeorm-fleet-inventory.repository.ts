import { Injectable } from '@nestjs/common';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { iotArnPrefix } from '../iot/iot-registration';
import { ExpiringGroup, FleetInventory, StatusDriftCandidate } from './fleet-inventory.repository';

@Injectable()
export class TypeOrmFleetInventory extends FleetInventory {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async expiringDeviceCertificates(now: string, until: string): Promise<ExpiringGroup[]> {
    const rows = await this.db.sql<{ id: string; authorityId: string; claimId: string | null; profile: string; notAfter: string }>(
      `SELECT id, authority_id AS "authorityId", claim_id AS "claimId", profile, not_after AS "notAfter" FROM certificates
       WHERE status = 'active' AND profile <> 'claim' AND not_after > ? AND not_after <= ? ORDER BY not_after, id`,
      [now, until],
    );
    const groups = new Map<string, ExpiringGroup>();
    for (const row of rows) {
      const key = `${row.authorityId}/${row.claimId ?? '-'}/${row.profile}`;
      const group = groups.get(key) ?? { authorityId: row.authorityId, claimId: row.claimId, profile: row.profile, certificateIds: [], earliestNotAfter: row.notAfter };
      group.certificateIds.push(row.id);
      groups.set(key, group);
    }
    return [...groups.values()];
  }

  async statusDriftCandidates(now: string, supersededBefore: string, limit: number): Promise<StatusDriftCandidate[]> {
    return this.db.sql<StatusDriftCandidate>(
      // The registration of the certificate's own target (null = default): one row per certificate.
      `SELECT c.id, c.fingerprint, c.status, r.ca_certificate_id AS "caCertificateId", r.target_id AS "targetId" FROM certificates c
       JOIN iot_ca_registrations r ON r.authority_id = c.authority_id AND r.target_id = COALESCE(c.iot_target_id, 'default')
       WHERE c.not_after > ? AND (c.status = 'revoked' OR (c.status = 'superseded' AND c.superseded_at < ?)) ORDER BY c.id LIMIT ${Number(limit)}`,
      [now, supersededBefore],
    );
  }

  async knownFingerprints(fingerprints: string[]): Promise<Set<string>> {
    const known = new Set<string>();
    for (let i = 0; i < fingerprints.length; i += 500) {
      const batch = fingerprints.slice(i, i + 500);
      const rows = await this.db.sql<{ fingerprint: string }>(`SELECT fingerprint FROM certificates WHERE fingerprint IN (${batch.map(() => '?').join(', ')})`, batch);
      for (const row of rows) known.add(row.fingerprint);
    }
    return known;
  }

  async keyDescriptions(): Promise<{ keyDescription: string; count: number; sample: string[] }[]> {
    const rows = await this.db.sql<{ keyDescription: string; count: number | string }>(
      `SELECT key_description AS "keyDescription", COUNT(*) AS count FROM certificates WHERE status = 'active' GROUP BY key_description`,
    );
    const result = [];
    for (const row of rows) {
      const sample = await this.db.sql<{ id: string }>(`SELECT id FROM certificates WHERE status = 'active' AND key_description = ? ORDER BY id LIMIT 20`, [row.keyDescription]);
      result.push({ keyDescription: row.keyDescription, count: Number(row.count), sample: sample.map((s) => s.id) });
    }
    return result;
  }

  async activeClaims(): Promise<{ id: string; name: string; maxDevices: number; used: number; notAfter: string }[]> {
    const rows = await this.db.sql<{ id: string; name: string; maxDevices: number | string; used: number | string; notAfter: string }>(
      `SELECT id, name, max_devices AS "maxDevices", used, not_after AS "notAfter" FROM claims WHERE status = 'active'`,
    );
    return rows.map((r) => ({ ...r, maxDevices: Number(r.maxDevices), used: Number(r.used) }));
  }

  async activeRegistrations(): Promise<{ authorityId: string; caCertificateId: string; targetId: string }[]> {
    return this.db.sql(`SELECT authority_id AS "authorityId", ca_certificate_id AS "caCertificateId", target_id AS "targetId" FROM iot_ca_registrations WHERE status = 'ACTIVE' ORDER BY target_id, authority_id`);
  }

  async iotActiveCertificates(limit: number): Promise<{ id: string; certificateArn: string; targetId: string }[]> {
    // The ARN comes from the registration in the certificate's own target (its account and region).
    const rows = await this.db.sql<{ id: string; fingerprint: string; caArn: string; targetId: string }>(
      `SELECT c.id, c.fingerprint, r.ca_certificate_arn AS "caArn", r.target_id AS "targetId" FROM certificates c
       JOIN iot_ca_registrations r ON r.authority_id = c.authority_id AND r.target_id = COALESCE(c.iot_target_id, 'default')
       WHERE c.status = 'active' AND c.iot_status = 'active' ORDER BY c.issued_at DESC LIMIT ${Number(limit)}`,
    );
    return rows.flatMap((row) => {
      const prefix = iotArnPrefix(row.caArn);
      return prefix ? [{ id: row.id, certificateArn: `${prefix}cert/${row.fingerprint}`, targetId: row.targetId }] : [];
    });
  }
}
