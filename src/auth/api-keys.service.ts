import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { Transactions } from '../database/transactions';
import { RequestContext, SYSTEM_CONTEXT } from '../common/actor';
import { apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey } from './api-key-secret';
import { ApiKeyRecord, ApiKeyRepository } from './api-key.repository';
import { Role } from '../common/roles';

export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  createdAt: string;
  createdBy: string | null;
  revokedAt: string | null;
}

export type AuthenticationResult =
  | { ok: true; key: ApiKeyView }
  | { ok: false; reason: 'missing' | 'malformed' | 'unknown' | 'revoked' };

@Injectable()
export class ApiKeysService {
  constructor(
    private readonly repository: ApiKeyRepository,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
  ) {}

  /** Creates a key; the secret is in the result and nowhere else, ever again. */
  async create(ctx: RequestContext, name: string, role: Role): Promise<ApiKeyView & { key: string }> {
    const { key, prefix } = generateApiKey();
    const record = await this.store(ctx, key, prefix, name, role);
    return { ...view(record), key };
  }

  /** One key (no secret). */
  async get(id: string): Promise<ApiKeyView> {
    const record = await this.repository.findById(id);
    if (!record) throw Errors.apiKeyNotFound(`no API key with id ${id}`);
    return view(record);
  }

  list(): Promise<ApiKeyView[]> {
    return this.repository.list().then((records) => records.map(view));
  }

  async revoke(ctx: RequestContext, id: string): Promise<ApiKeyView> {
    return this.transactions.run(async () => {
      const record = await this.repository.findById(id);
      if (!record) throw Errors.apiKeyNotFound(`no API key with id ${id}`);
      if (record.revokedAt) return view(record);
      const revokedAt = this.clock.now().toISOString();
      // Of two concurrent revocations only one changes the row, and only it is audited.
      if (!(await this.repository.markRevoked(id, revokedAt))) return view((await this.repository.findById(id))!);
      await this.audit.record(ctx, { action: 'api-key.revoked', target: { type: 'api-key', id }, details: { name: record.name, role: record.role } });
      return view({ ...record, revokedAt });
    });
  }

  async authenticate(header: string | undefined): Promise<AuthenticationResult> {
    if (!header) return { ok: false, reason: 'missing' };
    // RFC 7235: the auth-scheme name is case-insensitive.
    const match = /^Bearer +(\S+)$/i.exec(header);
    const prefix = match ? apiKeyPrefix(match[1]) : undefined;
    if (!match || !prefix) return { ok: false, reason: 'malformed' };
    const record = await this.repository.findByPrefix(prefix);
    // Compare even when the prefix is unknown, so timing does not tell which prefixes exist.
    const matches = apiKeyMatches(match[1], record?.secretHash ?? hashApiKey('fpk_000000000000.'));
    if (!record || !matches) return { ok: false, reason: 'unknown' };
    if (record.revokedAt) return { ok: false, reason: 'revoked' };
    return { ok: true, key: view(record) };
  }

  /**
   * Boot-time key provisioning: FLEET_PKI_BOOTSTRAP_ADMIN_KEY is stored once (never again after it was
   * revoked); with no such variable and no keys at all, a new admin key is generated and returned so the
   * caller can print it once.
   */
  async bootstrap(bootstrapKey: string | undefined): Promise<string | undefined> {
    return this.transactions.run(async () => {
      // Replicas starting together must not both create the key (or two initial keys).
      await this.audit.lockChain();
      if (bootstrapKey) {
        const prefix = apiKeyPrefix(bootstrapKey)!;
        if (!(await this.repository.findByPrefix(prefix))) {
          await this.store(SYSTEM_CONTEXT, bootstrapKey, prefix, 'bootstrap admin', 'admin');
        }
        return undefined;
      }
      if ((await this.repository.count()) > 0) return undefined;
      const { key, prefix } = generateApiKey();
      await this.store(SYSTEM_CONTEXT, key, prefix, 'initial admin', 'admin');
      return key;
    });
  }

  private store(ctx: RequestContext, key: string, prefix: string, name: string, role: Role): Promise<ApiKeyRecord> {
    return this.transactions.run(async () => {
      const record: ApiKeyRecord = {
        id: randomUUID(),
        name,
        role,
        prefix,
        secretHash: hashApiKey(key),
        createdAt: this.clock.now().toISOString(),
        createdBy: ctx.actor.id,
        revokedAt: null,
      };
      await this.repository.insert(record);
      await this.audit.record(ctx, { action: 'api-key.created', target: { type: 'api-key', id: record.id }, details: { name, role, prefix } });
      return record;
    });
  }
}

function view(record: ApiKeyRecord): ApiKeyView {
  const { secretHash: _secretHash, ...rest } = record;
  return rest;
}
