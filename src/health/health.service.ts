import { Injectable } from '@nestjs/common';
import { AuthorityRepository } from '../authorities/authority.repository';
import { DomainError, Errors } from '../common/errors';
import { DatabaseProbe } from '../database/database-probe';
import { KeyManagers } from '../keys/key-manager';

/** The readiness checks: the database answers, and every active authority's key is able to sign. */
@Injectable()
export class HealthService {
  constructor(
    private readonly database: DatabaseProbe,
    private readonly keys: KeyManagers,
    private readonly authorities: AuthorityRepository,
  ) {}

  /** The state of each check, all 'ok'; otherwise throws NOT_READY carrying them. */
  async readiness(): Promise<Record<string, string>> {
    const checks: Record<string, string> = {};
    checks.database = (await this.database.reachable()) ? 'ok' : 'unreachable';
    if (checks.database === 'ok') {
      // Every active authority's key must be able to sign (local: decrypts; KMS: DescribeKey, cached briefly).
      for (const authority of await this.authorities.listAll()) {
        if (authority.status !== 'active') continue;
        try {
          await this.keys.get(authority.keyBackend).checkKey(authority.keyRef, authority.keySpec);
          checks[`authority:${authority.id}`] = 'ok';
        } catch (err) {
          checks[`authority:${authority.id}`] = `${authority.keyBackend} key ${err instanceof DomainError ? err.code : 'failing'}`;
        }
      }
    }
    const failed = Object.entries(checks).filter(([, state]) => state !== 'ok');
    if (failed.length) {
      throw Errors.notReady(`not ready: ${failed.map(([name, state]) => `${name} ${state}`).join(', ')}`, { checks });
    }
    return checks;
  }
}
