import { Injectable } from '@nestjs/common';
import { LessThan } from 'typeorm';
import { StoredCertificateStatus } from '../certificates/certificate';
import { OcspSignerEntity } from '../database/entities';
import { TypeOrmTransactions } from '../database/transactions';
import { KeySpec } from '../keys/key-spec';
import { RevocationReason } from '../pki/crl';
import { OcspCertificateState, OcspRepository, StoredOcspSigner } from './ocsp.repository';

@Injectable()
export class TypeOrmOcspRepository extends OcspRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  /**
   * SQLite has one connection: a bare read while another request's transaction is open would see its
   * uncommitted writes (a revocation that may still roll back, and a revocation counter that would then be
   * reused by the next one). Reads there take their turn like transactions; PostgreSQL reads are
   * read-committed as they are.
   */
  private read<T>(work: () => Promise<T>): Promise<T> {
    return this.db.isPostgres ? work() : this.db.run(work);
  }

  authorityCount(): Promise<number> {
    return this.read(async () => Number((await this.db.sql<{ n: number | string }>('SELECT COUNT(*) AS n FROM authorities'))[0].n));
  }

  revocationCount(authorityId: string): Promise<number | null> {
    return this.read(() => this.countOf(authorityId));
  }

  snapshot(authorityId: string, serials: string[]): Promise<{ revocationCount: number; states: OcspCertificateState[] }> {
    return this.read(async () => {
      const revocationCount = (await this.countOf(authorityId)) ?? 0;
      if (serials.length === 0) return { revocationCount, states: [] };
      const rows = await this.db.sql<{ serial: string; status: string; revokedAt: string | null; revocationReason: string | null }>(
        `SELECT serial, status, revoked_at AS "revokedAt", revocation_reason AS "revocationReason" FROM certificates ` +
          `WHERE authority_id = ? AND serial ${serials.length === 1 ? '= ?' : `IN (${serials.map(() => '?').join(', ')})`}`,
        [authorityId, ...serials],
      );
      return {
        revocationCount,
        states: rows.map((row) => ({
          serial: row.serial,
          status: row.status as StoredCertificateStatus,
          revokedAt: row.revokedAt,
          revocationReason: row.revocationReason as RevocationReason | null,
        })),
      };
    });
  }

  private async countOf(authorityId: string): Promise<number | null> {
    const [row] = await this.db.sql<{ n: number | string }>('SELECT revocation_count AS n FROM authorities WHERE id = ?', [authorityId]);
    return row ? Number(row.n) : null;
  }

  async latestSigner(authorityId: string): Promise<StoredOcspSigner | null> {
    const row = await this.read(() => this.db.manager().findOne(OcspSignerEntity, { where: { authorityId }, order: { notAfter: 'DESC', createdAt: 'DESC' } }));
    return row ? toSigner(row) : null;
  }

  async insertSigner(signer: StoredOcspSigner): Promise<void> {
    await this.db.manager().insert(OcspSignerEntity, { ...signer, certificateDer: signer.certificateDer.toString('base64') });
  }

  async expiredSigners(before: string): Promise<StoredOcspSigner[]> {
    const rows = await this.read(() => this.db.manager().find(OcspSignerEntity, { where: { notAfter: LessThan(before) } }));
    return rows.map(toSigner);
  }

  async deleteSigner(id: string): Promise<void> {
    await this.db.run(() => this.db.manager().delete(OcspSignerEntity, { id }));
  }
}

function toSigner(row: OcspSignerEntity): StoredOcspSigner {
  return { ...row, keySpec: row.keySpec as KeySpec, certificateDer: Buffer.from(row.certificateDer, 'base64') };
}
