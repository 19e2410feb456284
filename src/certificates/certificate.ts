import { RevocationReason } from '../pki/crl';

/** Stored lifecycle state. `expired` is derived from notAfter, never stored. */
export type StoredCertificateStatus = 'active' | 'revoked' | 'superseded';
export type CertificateStatus = StoredCertificateStatus | 'expired';

/** Where the certificate stands in AWS IoT, as far as this service has done or seen. */
/**
 * `aws-created`: AWS IoT created the certificate itself, from the certificate provider's answer to a
 * CreateCertificateFromCsr (docs/aws-fleet-provisioning.md): never registered by us, but revoked there by us.
 */
export const IOT_STATUSES = ['none', 'pending', 'registered', 'active', 'inactive', 'revoked', 'failed', 'aws-created'] as const;
export type IotStatus = (typeof IOT_STATUSES)[number];

/**
 * Per-certificate AWS IoT settings that override the CA registration's (set by a factory claim): the policy to
 * attach, and how the thing is created (type, group, attributes).
 */
export interface IotThingOptions {
  policyName?: string;
  thingTypeName?: string;
  thingGroupName?: string;
  attributes?: Record<string, string>;
}

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
  iotStatus: IotStatus;
  iotLastError: string | null;
  /** AWS IoT overrides for this certificate's registration, or null to follow the CA registration alone. */
  iotThing: IotThingOptions | null;
  /** The IoT target (docs/iot-targets.md) it is registered in; null = the default target. */
  iotTargetId: string | null;
  /** The factory claim whose exchange issued it. */
  claimId: string | null;
  /** Lineage: the certificate this one renewed, and the one that renewed it (this one is then superseded). */
  replacesId: string | null;
  replacedById: string | null;
  /** When it was superseded; it stays valid for the renewal grace period after this. */
  supersededAt: string | null;
  /** What a TPM proved about the certified key at enrollment (docs/hardware-identity.md); null: nothing. */
  hardwareAttestation: HardwareAttestation | null;
  /**
   * 'imported': a pre-provisioned identity from a secure-element manifest (docs/secure-elements.md), not issued by us;
   * its authorityId is its secure-element signer's id, not an authority of ours. Absent = 'issued'.
   */
  origin?: CertificateOrigin;
  /** Imported certificates: the chain the vendor's manifest gave (the secure element's signer first). */
  importedChainDer?: Buffer[] | null;
}

export type CertificateOrigin = 'issued' | 'imported';

/**
 * What a search answers per certificate (GET /v1/certificates): the record without its DER, chains, metadata and
 * attestation, so a page of 100 reads and decodes a fraction of the bytes (docs/architecture.md#search-indexes).
 */
export const CERTIFICATE_SUMMARY_FIELDS = [
  'id', 'authorityId', 'serial', 'fingerprint', 'status', 'origin', 'profile', 'subject', 'thingName', 'claimId',
  'notBefore', 'notAfter', 'issuedAt', 'revokedAt', 'revocationReason', 'iotStatus', 'iotLastError', 'iotTargetId',
] as const satisfies readonly (keyof CertificateRecord)[];

export type CertificateSummary = Pick<CertificateRecord, (typeof CERTIFICATE_SUMMARY_FIELDS)[number]>;

/** The profile name of imported (pre-provisioned) identities: issued under no profile of ours. */
export const PRE_PROVISIONED_PROFILE = 'pre-provisioned';

/** Whether the certificate is a pre-provisioned identity (imported from a manifest), not one we issued. */
export function isImported(record: Pick<CertificateRecord, 'origin'>): boolean {
  return record.origin === 'imported';
}

/**
 * The proof behind a hardware-bound key (docs/hardware-identity.md): the EK certificate that chained to an allowed
 * manufacturer root, the AK that activated the credential sealed to that EK, and the certified key's TPM name.
 */
export interface HardwareAttestation {
  type: 'tpm2';
  /** SHA-256 of the EK certificate DER, lowercase hex. */
  ekCertificateSha256: string;
  ekIssuer: string;
  /** The allow-listed TPM manufacturer root the EK chain ended in. */
  manufacturerRootId: string;
  /** TPM names (nameAlg || digest), lowercase hex. */
  akName: string;
  keyName: string;
  /** When the device answered the challenge. */
  attestedAt: string;
}

/** The status a caller sees: an active certificate past its notAfter is expired. */
export function effectiveStatus(record: Pick<CertificateRecord, 'status' | 'notAfter'>, now: Date): CertificateStatus {
  return record.status === 'active' && new Date(record.notAfter) <= now ? 'expired' : record.status;
}
