import { Allocation } from '../common/allocation';
import { EST_KEY_SPECS, EstKeySpec } from '../pki/est';

/** RFC 7030 §3.2.2 operation path segments: a label may not be one of them (nor the reserved fullcmc). */
export const EST_OPERATIONS = ['cacerts', 'simpleenroll', 'simplereenroll', 'csrattrs', 'serverkeygen'] as const;
export type EstOperation = (typeof EST_OPERATIONS)[number];
const RESERVED = new Set<string>([...EST_OPERATIONS, 'fullcmc']);

/** The label that /.well-known/est/<operation> (no label) uses: create a label with this name to serve it. */
export const DEFAULT_EST_LABEL = 'default';

export const EST_LABEL_PATTERN = /^[a-z0-9-]{1,64}$/;
export { EST_KEY_SPECS, EstKeySpec };

interface EstLabelCommon {
  label: string;
  /** The key type csrattrs asks for and serverkeygen makes. */
  keySpec: EstKeySpec;
  /** Whether /serverkeygen may be used under this label (off unless set). */
  serverKeygen: boolean;
  /** Which IoT target(s) enrollments through this label go to, over the claim's or the profile's (docs/iot-targets.md); null: theirs. */
  allocation: Allocation | null;
  /**
   * `tpm`: devices under this label must enroll with TPM attestation (docs/hardware-identity.md), which EST cannot
   * carry, so EST enrollment here is refused (ATTESTATION_REQUIRED); `off`: the label adds nothing (a claim label
   * still follows its claim's setting).
   */
  attestation: EstLabelAttestation;
  createdAt: string;
}

export const EST_LABEL_ATTESTATION = ['off', 'tpm'] as const;
export type EstLabelAttestation = (typeof EST_LABEL_ATTESTATION)[number];

/** Enrollment is the factory exchange of this claim: the TLS client certificate is the claim certificate. */
export interface ClaimEstLabel extends EstLabelCommon {
  kind: 'claim';
  claimId: string;
}

/** Enrollment is issuance under this authority and profile, by an operator API key. */
export interface AuthorityEstLabel extends EstLabelCommon {
  kind: 'authority';
  authorityId: string;
  profile: string;
  validityDays: number | null;
}

export type EstLabel = ClaimEstLabel | AuthorityEstLabel;

/** Why a label name cannot be used, or undefined when it can. */
export function labelNameProblem(label: string): string | undefined {
  if (!EST_LABEL_PATTERN.test(label)) return 'label must be 1-64 characters of a-z, 0-9 and -';
  if (RESERVED.has(label)) return `label "${label}" is an EST operation name (RFC 7030 §3.2.2)`;
  return undefined;
}

/** What a label points at, by kind (null where its kind has none): for storage and for the API. */
export function labelTarget(label: EstLabel): { claimId: string | null; authorityId: string | null; profile: string | null; validityDays: number | null } {
  return label.kind === 'claim'
    ? { claimId: label.claimId, authorityId: null, profile: null, validityDays: null }
    : { claimId: null, authorityId: label.authorityId, profile: label.profile, validityDays: label.validityDays };
}
