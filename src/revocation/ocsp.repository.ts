import { StoredCertificateStatus } from '../certificates/certificate';
import { KeySpec } from '../keys/key-spec';
import { RevocationReason } from '../pki/crl';

/** A delegated OCSP signer as stored: its certificate, and a reference to its key in the local key store. */
export interface StoredOcspSigner {
  id: string;
  authorityId: string;
  keyRef: string;
  keySpec: KeySpec;
  certificateDer: Buffer;
  notBefore: string;
  notAfter: string;
  createdAt: string;
}

/** What OCSP needs to know of one certificate an authority issued. */
export interface OcspCertificateState {
  serial: string;
  status: StoredCertificateStatus;
  revokedAt: string | null;
  revocationReason: RevocationReason | null;
}

/**
 * Port: the reads the OCSP responder makes per request, and the delegated signers. Reads see committed data
 * only, so an answer never reflects a revocation that may still roll back.
 */
export abstract class OcspRepository {
  /** How many authorities have a certificate (they are never deleted; a pending one has none yet): a cheap "is there a new one" check. */
  abstract authorityCount(): Promise<number>;
  /** Every authority's revocation counter (raised in the transaction of every revocation). */
  abstract revocationCounts(): Promise<{ authorityId: string; count: number }[]>;
  /**
   * The revocation counter and then the state of the given serials, in that order: an answer built from the
   * states reflects at least every revocation the counter counts (what a reusable answer is keyed by).
   */
  abstract snapshot(authorityId: string, serials: string[]): Promise<{ revocationCount: number; states: OcspCertificateState[] }>;
  /** The state of the given serials (certificates the authority issued; others are absent). */
  abstract states(authorityId: string, serials: string[]): Promise<OcspCertificateState[]>;
  /** The authority's signer with the latest notAfter, or null. */
  abstract latestSigner(authorityId: string): Promise<StoredOcspSigner | null>;
  abstract insertSigner(signer: StoredOcspSigner): Promise<void>;
  /** Signers whose notAfter is before `before`. */
  abstract expiredSigners(before: string): Promise<StoredOcspSigner[]>;
  abstract deleteSigner(id: string): Promise<void>;
}
