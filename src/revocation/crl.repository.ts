export interface StoredCrl {
  authorityId: string;
  crlNumber: number;
  thisUpdate: string;
  nextUpdate: string;
  revocationsCovered: number;
  der: Buffer;
}

/** Port: published CRLs. */
export abstract class CrlRepository {
  abstract latest(authorityId: string): Promise<StoredCrl | null>;
  abstract insert(crl: StoredCrl): Promise<void>;
  /** Deletes the authority's CRLs numbered below `belowNumber`. */
  abstract prune(authorityId: string, belowNumber: number): Promise<void>;
}
