import { KeyBackend, KeySpec } from '../keys/key-spec';

export type AuthorityType = 'root' | 'intermediate';
export type AuthorityStatus = 'active' | 'disabled';

/** A certificate authority as the domain sees it: a key reference, never key bytes. */
export interface Authority {
  id: string;
  name: string;
  type: AuthorityType;
  parentId: string | null;
  status: AuthorityStatus;
  keyBackend: KeyBackend;
  keySpec: KeySpec;
  keyRef: string;
  publicKeySha256: string;
  subject: string;
  serial: string;
  fingerprint: string;
  pathLength: number | null;
  notBefore: string;
  notAfter: string;
  certificateDer: Buffer;
  revocationCount: number;
  createdAt: string;
  disabledAt: string | null;
}
