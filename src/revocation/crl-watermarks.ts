/** What this service last published for one authority: its highest CRL number and the revocations that CRL covered. */
export interface CrlWatermark {
  crlNumber: number;
  revocationsCovered: number;
}

/**
 * Port: the published-CRL watermarks, kept outside the database (docs/operations.md "Restoring an older database").
 * A database restored from an older backup has an older CRL counter and has lost the revocations made since; the
 * watermark still remembers them, so the CRL service neither reuses a CRL number nor publishes a CRL listing fewer
 * revocations than one it already published.
 */
export abstract class CrlWatermarks {
  abstract get(authorityId: string): CrlWatermark | undefined;
  /** Raises the authority's watermark to `mark` (each field only grows), or sets it to `mark` when `replace`. */
  abstract record(authorityId: string, mark: CrlWatermark, replace?: boolean): void;
}
