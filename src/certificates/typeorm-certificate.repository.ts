import { Injectable } from '@nestjs/common';
import { Not } from 'typeorm';
import { CertificateEntity } from '../database/entities/certificate.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { RevocationReason } from '../pki/crl';
import { CertificateRecord, IotStatus, IotThingOptions, StoredCertificateStatus } from './certificate';
import { CertificateQuery, CertificateRepository } from './certificate.repository';

@Injectable()
export class TypeOrmCertificateRepository extends CertificateRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(record: CertificateRecord): Promise<void> {
    await this.db.insert(CertificateEntity, {
      ...record,
      certificateDer: record.certificateDer.toString('base64'),
      metadata: record.metadata ? JSON.stringify(record.metadata) : null,
      iotThing: record.iotThing ? JSON.stringify(record.iotThing) : null,
    });
  }

  async claimOfClaimCertificate(certificateId: string): Promise<string | null> {
    const [row] = await this.db.sql<{ id: string }>('SELECT id FROM claims WHERE claim_certificate_id = ?', [certificateId]);
    return row?.id ?? null;
  }

  async findById(id: string): Promise<CertificateRecord | null> {
    const [row] = await this.db.select(CertificateEntity, 'id = ?', [id]);
    return row ? toRecord(row) : null;
  }

  async search(query: CertificateQuery): Promise<CertificateRecord[]> {
    const qb = this.db.manager().createQueryBuilder(CertificateEntity, 'c');
    switch (query.status) {
      case undefined:
        break;
      case 'active':
        qb.andWhere("c.status = 'active' AND c.not_after > :now", { now: query.now });
        break;
      case 'expired':
        qb.andWhere("c.status = 'active' AND c.not_after <= :now", { now: query.now });
        break;
      default:
        qb.andWhere('c.status = :status', { status: query.status });
    }
    if (query.authorityId) qb.andWhere('c.authority_id = :authorityId', { authorityId: query.authorityId });
    if (query.claimId) qb.andWhere('c.claim_id = :claimId', { claimId: query.claimId });
    if (query.thingName) qb.andWhere('c.thing_name = :thingName', { thingName: query.thingName });
    if (query.serial) qb.andWhere('c.serial = :serial', { serial: query.serial });
    if (query.fingerprint) qb.andWhere('c.fingerprint = :fingerprint', { fingerprint: query.fingerprint });
    if (query.expiringBefore) qb.andWhere('c.not_after < :expiringBefore', { expiringBefore: query.expiringBefore });
    if (query.before) {
      qb.andWhere('(c.issued_at < :issuedAt OR (c.issued_at = :issuedAt AND c.id < :id))', query.before);
    }
    const rows = await qb.orderBy('c.issued_at', 'DESC').addOrderBy('c.id', 'DESC').limit(query.limit).getMany();
    return rows.map(toRecord);
  }

  async markSuperseded(id: string, replacedById: string, at: string): Promise<boolean> {
    // Conditional: of two renewals racing for one certificate, exactly one supersedes it.
    const rows = await this.db.sql(
      "UPDATE certificates SET status = 'superseded', replaced_by_id = ?, superseded_at = ? WHERE id = ? AND status = 'active' AND replaced_by_id IS NULL RETURNING id",
      [replacedById, at, id],
    );
    return rows.length === 1;
  }

  async markRevoked(id: string, revokedAt: string, reason: RevocationReason): Promise<boolean> {
    // Conditional update: of two concurrent revocations exactly one matches the row.
    const result = await this.db
      .manager()
      .update(CertificateEntity, { id, status: Not('revoked') }, { status: 'revoked', revokedAt, revocationReason: reason });
    return (result.affected ?? 0) > 0;
  }

  async findByFingerprint(fingerprint: string): Promise<CertificateRecord | null> {
    const [row] = await this.db.select(CertificateEntity, 'fingerprint = ?', [fingerprint]);
    return row ? toRecord(row) : null;
  }

  async setIotStatus(id: string, status: IotStatus, lastError: string | null): Promise<void> {
    // REVOKED is final in AWS IoT, so it is final here: a late job step cannot write over it.
    const where = status === 'revoked' ? { id } : { id, iotStatus: Not('revoked') };
    await this.db.run(() => this.db.manager().update(CertificateEntity, where, { iotStatus: status, iotLastError: lastError }));
  }

  async expiringCounts(now: string, until: string): Promise<{ authorityId: string; count: number }[]> {
    const rows = await this.db.sql<{ authorityId: string; count: number | string }>(
      "SELECT authority_id AS \"authorityId\", COUNT(*) AS count FROM certificates WHERE status = 'active' AND not_after > ? AND not_after <= ? GROUP BY authority_id",
      [now, until],
    );
    return rows.map((row) => ({ authorityId: row.authorityId, count: Number(row.count) }));
  }

  async isCompromisedKey(publicKeySha256: string): Promise<boolean> {
    const rows = await this.db.sql("SELECT 1 AS found FROM certificates WHERE public_key_sha256 = ? AND revocation_reason = 'keyCompromise' LIMIT 1", [publicKeySha256]);
    return rows.length > 0;
  }
}

function toRecord(row: CertificateEntity): CertificateRecord {
  return {
    ...row,
    status: row.status as StoredCertificateStatus,
    certificateDer: Buffer.from(row.certificateDer, 'base64'),
    metadata: row.metadata ? (JSON.parse(row.metadata) as Record<string, string>) : null,
    validityClamped: Boolean(row.validityClamped),
    revocationReason: row.revocationReason as RevocationReason | null,
    iotStatus: row.iotStatus as IotStatus,
    iotThing: row.iotThing ? (JSON.parse(row.iotThing) as IotThingOptions) : null,
  };
}
