import { RevocationReason } from '../pki/crl';

/** Stored lifecycle state. `expired` is derived from notAfter, never stored. */
export type StoredCertificateStatus = 'active' | 'revoked' | 'superseded';
export type CertificateStatus = StoredCertificateStatus | 'expired';

export interface CertificateRecord {
  id: string;
  authorityId: string;
  serial: string;
  fingerprint: string;
  profile: string;
  subject: string;
  thingName: string | null;
  status: StoredCertificateStatus;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  publicKeySha256: string;
  keyDescription: string;
  certificateDer: Buffer;
  metadata: Record<string, string> | null;
  validityClamped: boolean;
  revokedAt: string | null;
  revocationReason: RevocationReason | null;
}

/** The status a caller sees: an active certificate past its notAfter is expired. */
export function effectiveStatus(record: CertificateRecord, now: Date): CertificateStatus {
  return record.status === 'active' && new Date(record.notAfter) <= now ? 'expired' : record.status;
}
