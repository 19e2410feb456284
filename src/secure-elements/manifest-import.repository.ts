import { ManifestImport, ManifestImportProgress } from './manifest-import';

/** Port: manifest import jobs. */
export abstract class ManifestImportRepository {
  /** Stores a new import; false when one with the same content hash exists (the caller reads that one). */
  abstract insert(job: ManifestImport): Promise<boolean>;
  abstract findById(id: string): Promise<ManifestImport | null>;
  abstract findByContent(contentSha256: string): Promise<ManifestImport | null>;
  /** Newest first; keyset after (createdAt, id). */
  abstract list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<ManifestImport[]>;
  /** Imports still to run or resume (queued, or running when their process died), oldest first. */
  abstract unfinished(limit: number): Promise<ManifestImport[]>;
  /** Records progress when the import's committed position is still `fromIndex`; false when someone else moved it. */
  /**
   * Of the given certificates, those the inventory already holds: by fingerprint, and by (authorityId, serial) (another
   * certificate with the same issuer and serial), in one or two queries per batch.
   */
  abstract existing(entries: { fingerprint: string; authorityId: string; serial: string }[]): Promise<{ fingerprints: Set<string>; serials: Set<string> }>;
  abstract saveProgress(id: string, fromIndex: number, progress: ManifestImportProgress): Promise<boolean>;
}
