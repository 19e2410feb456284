import { ImportedRegistrationMode } from '../iot/imported-identity-sync';

export type ManifestImportStatus = 'queued' | 'running' | 'done' | 'failed';

/** One refused entry, by its index in the manifest (0-based). */
export interface ManifestEntryRefusal {
  index: number;
  uniqueId: string | null;
  code: string;
  message: string;
}

/** At most this many refusals are kept on an import (the first ones by index); `failed` counts them all. */
export const MAX_KEPT_FAILURES = 100;

/** A secure-element manifest import (docs/secure-elements.md). */
export interface ManifestImport {
  id: string;
  contentSha256: string;
  signerFingerprint: string;
  signerDer: Buffer;
  signerSubject: string;
  registration: ImportedRegistrationMode;
  iotTargetId: string | null;
  policyName: string | null;
  fileName: string;
  sizeBytes: number;
  status: ManifestImportStatus;
  total: number;
  /** The first entry not yet committed. */
  nextIndex: number;
  imported: number;
  skipped: number;
  failed: number;
  failures: ManifestEntryRefusal[];
  error: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface ManifestImportProgress {
  status: ManifestImportStatus;
  nextIndex: number;
  imported: number;
  skipped: number;
  failed: number;
  failures: ManifestEntryRefusal[];
  error: string | null;
  updatedAt: string;
  finishedAt: string | null;
}
