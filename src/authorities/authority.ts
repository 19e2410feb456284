import { KeyBackend, KeySpec } from '../keys/key-spec';

export type AuthorityType = 'root' | 'intermediate';
/** retiring: rotated; issues nothing new, still signs CRLs and answers OCSP for what it issued. */
export type AuthorityStatus = 'active' | 'retiring' | 'disabled';
/**
 * What an authority's end-entity certificates are for. A `claims` CA issues only factory claim certificates
 * (through claims); a `devices` CA issues everything else. Neither may stand in for the other.
 */
export const AUTHORITY_USAGES = ['devices', 'claims'] as const;
export type AuthorityUsage = (typeof AUTHORITY_USAGES)[number];

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
  notBefore: string;
  notAfter: string;
  certificateDer: Buffer;
  revocationCount: number;
  createdAt: string;
  disabledAt: string | null;
  successorId: string | null;
  retiringAt: string | null;
}
