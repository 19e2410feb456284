import { Authority } from './authority';

/** What the certificate uploaded for a pending authority fills in (docs/external-roots.md). */
export type CertifiedFields = Pick<Authority, 'serial' | 'fingerprint' | 'notBefore' | 'notAfter' | 'pathLength' | 'certificateDer' | 'externalChain'>;

/** Port: stored authorities. */
export abstract class AuthorityRepository {
  abstract insert(authority: Authority): Promise<void>;
  abstract findById(id: string): Promise<Authority | null>;
  abstract list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Authority[]>;
  abstract listAll(): Promise<Authority[]>;
  abstract disable(id: string, at: string): Promise<boolean>;
  /** pending → active with its certificate; false when it was not pending (a concurrent upload won). */
  abstract certify(id: string, certified: CertifiedFields): Promise<boolean>;
  /** active → retiring with its successor; false when it was not active. */
  abstract markRetiring(id: string, successorId: string, at: string): Promise<boolean>;
  /** Opens (until) or closes (null) an offline authority's signing window; false when it is not offline. */
  abstract setSigningWindow(id: string, until: string | null): Promise<boolean>;
  abstract isAuthorityKey(publicKeySha256: string): Promise<boolean>;
  /** Counts one more revocation under the authority (row-locks it on PostgreSQL until commit). */
  abstract countRevocation(id: string): Promise<void>;
  /**
   * Allocates the next CRL number in the database, so two replicas never hand out the same one; never below `atLeast`
   * (the highest number this service published before, when a restored database has an older counter).
   */
  abstract nextCrlNumber(id: string, atLeast?: number): Promise<number>;
}
