import { Injectable } from '@nestjs/common';
import { LessThan } from 'typeorm';
import { StoredCertificateStatus } from '../certificates/certificate';
import { OcspSignerEntity } from '../database/entities/ocsp-signer.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { KeySpec } from '../keys/key-spec';
import { RevocationReason } from '../pki/crl';
import { OcspCertificateState, OcspRepository, StoredOcspSigner } from './ocsp.repository';

/** The part of a better-sqlite3 connection used here (TypeORM's driver holds it). */
interface SqliteStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface SqliteConnection {
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

interface StateRow {
  serial: string;
  status: string;
  revokedAt: string | null;
  revocationReason: string | null;
}

const REVOCATION_COUNT = 'SELECT revocation_count AS n FROM authorities WHERE id = ?';

function statesSql(count: number): string {
  return (
    'SELECT serial, status, revoked_at AS "revokedAt", revocation_reason AS "revocationReason" FROM certificates ' +
    `WHERE authority_id = ? AND serial ${count === 1 ? '= ?' : `IN (${Array.from({ length: count }, () => '?').join(', ')})`}`
  );
}

function toState(row: StateRow): OcspCertificateState {
  return {
    serial: row.serial,
    status: row.status as StoredCertificateStatus,
    revokedAt: row.revokedAt,
    revocationReason: row.revocationReason as RevocationReason | null,
  };
}

@Injectable()
export class TypeOrmOcspRepository extends OcspRepository {
  private readonly statements = new Map<string, SqliteStatement>();

  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  /** Reads off the hot path: on SQLite in a transaction of their own (see `read`). */
  private queued<T>(work: () => Promise<T>): Promise<T> {
    return this.db.isPostgres ? work() : this.db.run(work);
  }

  /**
   * SQLite has one connection: a bare read while another request's transaction is open on it would see that
   * transaction's uncommitted writes (a revocation that may still roll back, whose revocation counter value the next
   * revocation would then reuse). So a read runs directly (synchronously: nothing can start in between) only when no
   * transaction is open, and otherwise takes its turn after it. PostgreSQL reads are read-committed as they are.
   */
  private read<T>(direct: (db: SqliteConnection) => T, queued: () => Promise<T>): Promise<T> {
    if (this.db.isPostgres) return queued();
    const db = this.db.manager().connection.driver as unknown as { databaseConnection: SqliteConnection };
    const connection = db.databaseConnection;
    return connection.inTransaction ? this.db.run(queued) : Promise.resolve(direct(connection));
  }

  /** Prepared once per SQL text (the hot path runs them per request). */
  private statement(db: SqliteConnection, sql: string): SqliteStatement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  authorityCount(): Promise<number> {
    // Authorities without a certificate (pending, under an external root) are not indexed: one that gets it changes the count.
    const sql = "SELECT COUNT(*) AS n FROM authorities WHERE certificate_der <> ''";
    return this.read(
      (db) => Number((this.statement(db, sql).get() as { n: number }).n),
      async () => Number((await this.db.sql<{ n: number | string }>(sql))[0].n),
    );
  }

  revocationCounts(): Promise<{ authorityId: string; count: number }[]> {
    const sql = 'SELECT id AS "authorityId", revocation_count AS count FROM authorities';
    const toCount = (row: { authorityId: string; count: number | string }) => ({ authorityId: row.authorityId, count: Number(row.count) });
    return this.read(
      (db) => (this.statement(db, sql).all() as { authorityId: string; count: number }[]).map(toCount),
      async () => (await this.db.sql<{ authorityId: string; count: number | string }>(sql)).map(toCount),
    );
  }

  snapshot(authorityId: string, serials: string[]): Promise<{ revocationCount: number; states: OcspCertificateState[] }> {
    const sql = statesSql(serials.length);
    return this.read(
      (db) => {
        const row = this.statement(db, REVOCATION_COUNT).get(authorityId) as { n: number } | undefined;
        const rows = serials.length ? (this.statement(db, sql).all(authorityId, ...serials) as StateRow[]) : [];
        return { revocationCount: row ? Number(row.n) : 0, states: rows.map(toState) };
      },
      async () => {
        // The counter first: the states read after it reflect at least the revocations it counts.
        const revocationCount = (await this.countOf(authorityId)) ?? 0;
        const rows = serials.length ? await this.db.sql<StateRow>(sql, [authorityId, ...serials]) : [];
        return { revocationCount, states: rows.map(toState) };
      },
    );
  }

  states(authorityId: string, serials: string[]): Promise<OcspCertificateState[]> {
    if (serials.length === 0) return Promise.resolve([]);
    const sql = statesSql(serials.length);
    return this.read(
      (db) => (this.statement(db, sql).all(authorityId, ...serials) as StateRow[]).map(toState),
      async () => (await this.db.sql<StateRow>(sql, [authorityId, ...serials])).map(toState),
    );
  }

  private async countOf(authorityId: string): Promise<number | null> {
    const [row] = await this.db.sql<{ n: number | string }>(REVOCATION_COUNT, [authorityId]);
    return row ? Number(row.n) : null;
  }

  async latestSigner(authorityId: string): Promise<StoredOcspSigner | null> {
    const row = await this.queued(() => this.db.manager().findOne(OcspSignerEntity, { where: { authorityId }, order: { notAfter: 'DESC', createdAt: 'DESC' } }));
    return row ? toSigner(row) : null;
  }

  async insertSigner(signer: StoredOcspSigner): Promise<void> {
    await this.db.manager().insert(OcspSignerEntity, { ...signer, certificateDer: signer.certificateDer.toString('base64') });
  }

  async expiredSigners(before: string): Promise<StoredOcspSigner[]> {
    const rows = await this.queued(() => this.db.manager().find(OcspSignerEntity, { where: { notAfter: LessThan(before) } }));
    return rows.map(toSigner);
  }

  async deleteSigner(id: string): Promise<void> {
    await this.db.run(() => this.db.manager().delete(OcspSignerEntity, { id }));
  }
}

function toSigner(row: OcspSignerEntity): StoredOcspSigner {
  return { ...row, keySpec: row.keySpec as KeySpec, certificateDer: Buffer.from(row.certificateDer, 'base64') };
}
