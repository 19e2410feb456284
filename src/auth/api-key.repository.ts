import { Role } from '../common/roles';

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  prefix: string;
  secretHash: string;
  createdAt: string;
  createdBy: string | null;
  revokedAt: string | null;
}

/** Port: stored API keys (hashes only). */
export abstract class ApiKeyRepository {
  abstract insert(record: ApiKeyRecord): Promise<void>;
  abstract findByPrefix(prefix: string): Promise<ApiKeyRecord | null>;
  abstract findById(id: string): Promise<ApiKeyRecord | null>;
  abstract list(): Promise<ApiKeyRecord[]>;
  abstract count(): Promise<number>;
  /** Sets revokedAt unless already set; false when it was. */
  abstract markRevoked(id: string, revokedAt: string): Promise<boolean>;
}
