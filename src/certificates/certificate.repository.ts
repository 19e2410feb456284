import { RevocationReason } from '../pki/crl';
import { CertificateRecord, CertificateStatus, CertificateSummary, IotStatus } from './certificate';

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
  abstract isCompromisedKey(publicKeySha256: string): Promise<boolean>;
  /** Active certificates per authority whose notAfter falls in (now, until]. */
  abstract expiringCounts(now: string, until: string): Promise<{ authorityId: string; count: number }[]>;
  abstract findByFingerprint(fingerprint: string): Promise<CertificateRecord | null>;
  /** The claim whose claim certificate this is, or null. */
  abstract claimOfClaimCertificate(certificateId: string): Promise<string | null>;
  /** Records AWS IoT progress; a certificate that reached 'revoked' keeps it. */
  abstract setIotStatus(id: string, status: IotStatus, lastError: string | null): Promise<void>;
  /** The IoT target the certificate is registered in (null = the default target; docs/iot-targets.md). */
  abstract setIotTarget(id: string, targetId: string | null): Promise<void>;
}
