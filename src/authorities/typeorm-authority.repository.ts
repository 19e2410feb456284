import { Injectable } from '@nestjs/common';
import { Not } from 'typeorm';
import { AuthorityEntity } from '../database/entities/authority.entity';
import { Errors } from '../common/errors';
import { isUniqueViolation } from '../database/errors';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { KeyBackend, KeySpec } from '../keys/key-spec';
import { Authority, AuthorityStatus, AuthorityType, AuthorityUsage } from './authority';
import { AuthorityRepository, CertifiedFields } from './authority.repository';

@Injectable()
export class TypeOrmAuthorityRepository extends AuthorityRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(authority: Authority): Promise<void> {
    try {
      await this.db.manager().insert(AuthorityEntity, { ...authority, ...encodedCertificate(authority), crlNumber: 0 });
    } catch (err) {
      if (isUniqueViolation(err)) throw Errors.authorityKeyInUse('the key already belongs to an authority');
      throw err;
    }
  }

  async findById(id: string): Promise<Authority | null> {
    const [row] = await this.db.select(AuthorityEntity, 'id = ?', [id]);
    return row ? toAuthority(row) : null;
  }

  async list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Authority[]> {
    const qb = this.db.manager().createQueryBuilder(AuthorityEntity, 'a');
    if (after) {
      qb.where('(a.created_at > :createdAt OR (a.created_at = :createdAt AND a.id > :id))', after);
    }
    const rows = await qb.orderBy('a.created_at', 'ASC').addOrderBy('a.id', 'ASC').limit(limit).getMany();
    return rows.map(toAuthority);
  }

  async listAll(): Promise<Authority[]> {
    return (await this.db.manager().find(AuthorityEntity)).map(toAuthority);
  }

  async disable(id: string, at: string): Promise<boolean> {
    const result = await this.db.manager().update(AuthorityEntity, { id, status: Not('disabled') }, { status: 'disabled', disabledAt: at });
    return (result.affected ?? 0) > 0;
  }

  async certify(id: string, certified: CertifiedFields): Promise<boolean> {
    const { certificateDer, externalChain } = encodedCertificate({ ...certified, csrDer: null });
    const result = await this.db.manager().update(AuthorityEntity, { id, status: 'pending' }, { ...certified, status: 'active', certificateDer, externalChain });
    return (result.affected ?? 0) > 0;
  }

  async markRetiring(id: string, successorId: string, at: string): Promise<boolean> {
    const rows = await this.db.sql("UPDATE authorities SET status = 'retiring', successor_id = ?, retiring_at = ? WHERE id = ? AND status = 'active' RETURNING id", [successorId, at, id]);
    return rows.length === 1;
  }

  async setSigningWindow(id: string, until: string | null): Promise<boolean> {
    const result = await this.db.manager().update(AuthorityEntity, { id, offline: true }, { signingEnabledUntil: until });
    return (result.affected ?? 0) > 0;
  }

  async isAuthorityKey(publicKeySha256: string): Promise<boolean> {
    return (await this.db.sql('SELECT 1 AS found FROM authorities WHERE public_key_sha256 = ? LIMIT 1', [publicKeySha256])).length > 0;
  }

  async countRevocation(id: string): Promise<void> {
    await this.db.manager().increment(AuthorityEntity, { id }, 'revocationCount', 1);
  }

  async nextCrlNumber(id: string, atLeast = 0): Promise<number> {
    // The increment row-locks the authority until commit; reading it back in the same transaction
    // therefore sees our own number, on both drivers.
    return this.db.run(async () => {
      const manager = this.db.manager();
      await manager.increment(AuthorityEntity, { id }, 'crlNumber', 1);
      const row = await manager.findOneOrFail(AuthorityEntity, { where: { id }, select: { id: true, crlNumber: true } });
      if (Number(row.crlNumber) >= atLeast) return Number(row.crlNumber);
      await manager.update(AuthorityEntity, { id }, { crlNumber: atLeast });
      return atLeast;
    });
  }
}

function encodedCertificate(fields: Pick<Authority, 'certificateDer' | 'csrDer' | 'externalChain'>): { certificateDer: string; csrDer: string | null; externalChain: string | null } {
  return {
    certificateDer: fields.certificateDer.toString('base64'),
    csrDer: fields.csrDer?.toString('base64') ?? null,
    externalChain: fields.externalChain?.map((der) => der.toString('base64')).join('\n') ?? null,
  };
}

export function toAuthority(row: AuthorityEntity): Authority {
  return {
    id: row.id,
    name: row.name,
    type: row.type as AuthorityType,
    parentId: row.parentId,
    usage: row.usage as AuthorityUsage,
    status: row.status as AuthorityStatus,
    keyBackend: row.keyBackend as KeyBackend,
    keySpec: row.keySpec as KeySpec,
    keyRef: row.keyRef,
    publicKeySha256: row.publicKeySha256,
    subject: row.subject,
    serial: row.serial,
    fingerprint: row.fingerprint,
    pathLength: row.pathLength,
    allowLeafIssuance: Boolean(row.allowLeafIssuance),
    offline: Boolean(row.offline),
    signingEnabledUntil: row.signingEnabledUntil,
    notBefore: row.notBefore,
    notAfter: row.notAfter,
    certificateDer: Buffer.from(row.certificateDer, 'base64'),
    csrDer: row.csrDer === null ? null : Buffer.from(row.csrDer, 'base64'),
    externalChain: row.externalChain === null ? null : row.externalChain.split('\n').map((b64) => Buffer.from(b64, 'base64')),
    revocationCount: Number(row.revocationCount),
    createdAt: row.createdAt,
    disabledAt: row.disabledAt,
    successorId: row.successorId,
    retiringAt: row.retiringAt,
  };
}
