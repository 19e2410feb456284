import { KeyBackend, KeySpec } from '../keys/key-spec';

export type AuthorityType = 'root' | 'intermediate';
/**
 * pending: created under an external root, waiting for the certificate that root signs (docs/external-roots.md); it
 * has a key and a CSR but no certificate, and issues nothing, publishes no CRL, answers no OCSP.
 * retiring: rotated; issues nothing new, still signs CRLs and answers OCSP for what it issued.
 */
export type AuthorityStatus = 'pending' | 'active' | 'retiring' | 'disabled';
export const AUTHORITY_STATUSES: readonly AuthorityStatus[] = ['pending', 'active', 'retiring', 'disabled'];
/**
 * What an authority's end-entity certificates are for. A `claims` CA issues only factory claim certificates
 * (through claims); a `devices` CA issues everything else. Neither may stand in for the other.
 */
export const AUTHORITY_USAGES = ['devices', 'claims'] as const;
export type AuthorityUsage = (typeof AUTHORITY_USAGES)[number];

/**
 * Whether the authority has its certificate. All do but one under an external root that is pending, or was disabled
 * while pending: it has a key and a CSR, and nothing to publish, sign or chain to.
 */
export function hasCertificate(authority: Authority): boolean {
  return authority.certificateDer.length > 0;
}

/** A certificate authority as the domain sees it: a key reference, never key bytes. */
export interface Authority {
  id: string;
  name: string;
  type: AuthorityType;
  parentId: string | null;
  usage: AuthorityUsage;
  status: AuthorityStatus;
  keyBackend: KeyBackend;
  keySpec: KeySpec;
  keyRef: string;
  publicKeySha256: string;
  subject: string;
  serial: string;
  fingerprint: string;
  pathLength: number | null;
  /**
   * Whether it signs end-entity certificates itself. A root's key should sign only CA certificates (and CRLs), so a
   * root does so only when created with allowLeafIssuance: true; an intermediate does unless created with false
   * (a policy CA that only certifies issuing CAs).
   */
  allowLeafIssuance: boolean;
  /** notBefore, notAfter, serial, fingerprint and certificateDer are empty ('' and no bytes) while pending. */
  notBefore: string;
  notAfter: string;
  certificateDer: Buffer;
  /** The CSR it was created with, when its certificate comes from an external root (parent "external"); else null. */
  csrDer: Buffer | null;
  /**
   * Under an external root, once its certificate is uploaded: the external issuers, direct issuer first, up to and
   * including the root. They end its chain in place of a parent of this service. Null otherwise.
   */
  externalChain: Buffer[] | null;
  revocationCount: number;
  /**
   * An offline root (docs/key-ceremony.md): its key signs nothing (intermediates, CRLs, OCSP signer certificates) except
   * while an operator has opened a signing window, until signingEnabledUntil.
   */
  offline: boolean;
  signingEnabledUntil: string | null;
  createdAt: string;
  disabledAt: string | null;
  successorId: string | null;
  retiringAt: string | null;
}
