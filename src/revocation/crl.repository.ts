import { StoredCrlEntry } from '../pki/crl';

/** A published CRL's facts, without its DER. */
export interface CrlInfo {
  authorityId: string;
  crlNumber: number;
  thisUpdate: string;
  nextUpdate: string;
  /** The authority's revocation counter that this CRL's entries include. */
  revocationsCovered: number;
}

export interface StoredCrl extends CrlInfo {
  der: Buffer;
}

/**
 * Where a worker thread reads a CRL's entries from, with a connection of its own (revocation/crl-worker.thread.ts):
 * a SQLite file, or a PostgreSQL URL.
 */
export type CrlSnapshotSource = { driver: 'sqlite'; file: string } | { driver: 'postgres'; url: string };

/** Port: published CRLs, and the revoked certificates they list. */
export abstract class CrlRepository {
  /** The authority's CRL with the highest number, without its DER (cheap: checked on every CRL request). */
  abstract latestInfo(authorityId: string): Promise<CrlInfo | null>;
  /** The DER of one stored CRL, or null when it is not stored (pruned). */
  abstract der(authorityId: string, crlNumber: number): Promise<Buffer | null>;
  /**
   * Stores the CRL unless a stored CRL of the authority has a higher number or covers more revocations (a replica
   * published a newer one meanwhile): published CRL numbers then never go back in what they list. Deletes the
   * authority's CRLs numbered below `pruneBelow` with it. Answers whether it was stored.
   */
  abstract publish(crl: StoredCrl, pruneBelow: number): Promise<boolean>;
  /**
   * The authority's revoked certificates that have not expired at `now`, in pages of at most `pageSize`, in serial
   * order (keyset pagination), handed to `onPage` one at a time (the next page is read after it resolves). Answers the
   * authority's revocation counter: every revocation it counts is in the pages. Used on the service's connection only
   * where no worker thread can read the database (snapshotSource answers null).
   */
  abstract readRevoked(authorityId: string, now: string, pageSize: number, onPage: (page: StoredCrlEntry[]) => Promise<void>): Promise<{ revocationCount: number }>;
  /**
   * The database for a worker thread to read the revoked certificates from on a connection of its own, or null when
   * it cannot (an in-memory SQLite database: readRevoked then reads them on the service's connection).
   */
  snapshotSource(): CrlSnapshotSource | null {
    return null;
  }
}
