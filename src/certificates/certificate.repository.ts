import { RevocationReason } from '../pki/crl';
import { Authority } from '../authorities/authority';
import { CertificateRecord, CertificateStatus, CertificateSummary, IotStatus } from './certificate';
import { IssueRegistration } from './certificate-events';

export interface CertificateQuery {
  status?: CertificateStatus;
  authorityId?: string;
  thingName?: string;
  claimId?: string;
  serial?: string;
  fingerprint?: string;
  expiringBefore?: string;
  /** Keyset position: rows strictly after this (issuedAt, id) in descending order. */
  before?: { issuedAt: string; id: string };
  now: string;
  limit: number;
}

/** Everything an issuance reads before it signs, read together (docs/architecture.md, "The path of one issuance"). */
export interface IssuanceReads {
  /** The issuing authority's row; null when there is no such authority. */
  authority: Authority | null;
  /** The CSR key is some authority's key. */
  authorityKey: boolean;
  /** The CSR key is the key of a certificate revoked for keyCompromise. */
  compromisedKey: boolean;
  /** The authority's AWS IoT registration in the target asked for; undefined when it was not asked for. */
  registration?: IssueRegistration | null;
}

/** Port: stored certificates. */
export abstract class CertificateRepository {
  abstract insert(record: CertificateRecord): Promise<void>;
  /** Several records with multi-row INSERTs. */
  abstract insertMany(records: CertificateRecord[]): Promise<void>;
  abstract findById(id: string): Promise<CertificateRecord | null>;
  /** A page of summaries (no DER): the search of GET /v1/certificates. */
  abstract search(query: CertificateQuery): Promise<CertificateSummary[]>;
  /** Sets status superseded (renewed by `replacedById`) when it is still active and unrenewed; false otherwise. */
  abstract markSuperseded(id: string, replacedById: string, at: string): Promise<boolean>;
  /** Sets status revoked unless already revoked; false when it was. */
  abstract markRevoked(id: string, revokedAt: string, reason: RevocationReason): Promise<boolean>;
  /**
   * One read for the facts of an issuance: the authority, whether the CSR key is an authority's key or a compromised
   * one (revoked for keyCompromise; the CA-key condition as AuthorityRepository.isAuthorityKey), and, when
   * `registrationTargetId` is given, the authority's AWS IoT registration in that target.
   */
  abstract readForIssuance(authorityId: string, publicKeySha256: string, registrationTargetId?: string): Promise<IssuanceReads>;
  /** Active certificates per authority whose notAfter falls in (now, until]. */
  abstract expiringCounts(now: string, until: string): Promise<{ authorityId: string; count: number }[]>;
  abstract findByFingerprint(fingerprint: string): Promise<CertificateRecord | null>;
  /** The same, with its issuing authority's row read in the same query (null only if that row is missing). */
  abstract findByFingerprintWithAuthority(fingerprint: string): Promise<{ certificate: CertificateRecord; authority: Authority | null } | null>;
  /**
   * The same, recording a token id as used (UsedTokenIds.use) in the same round trip: `tokenFresh` is false when it
   * was used before. The id is recorded even when no certificate has the fingerprint.
   */
  abstract findByFingerprintSpendingToken(
    fingerprint: string,
    token: { id: string; keepUntil: string },
  ): Promise<{ certificate: CertificateRecord; authority: Authority | null; tokenFresh: boolean } | null>;
  /** The claim whose claim certificate this is, or null. */
  abstract claimOfClaimCertificate(certificateId: string): Promise<string | null>;
  /**
   * Records AWS IoT progress; a certificate that reached 'revoked' keeps it. With `inTarget` (null: the default
   * target), only while the certificate is still in that target: a job's step in a target the certificate has been
   * moved out of meanwhile must not write over the move's progress (docs/iot-targets.md, "Re-allocation").
   */
  abstract setIotStatus(id: string, status: IotStatus, lastError: string | null, inTarget?: string | null): Promise<void>;
  /** The IoT target the certificate is registered in (null = the default target; docs/iot-targets.md). */
  abstract setIotTarget(id: string, targetId: string | null): Promise<void>;
}
