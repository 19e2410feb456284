/**
 * Roles and what each may do: the whole role matrix lives here (below every feature, which declares what its routes
 * need), auth/auth.guard.ts enforces it, and test/e2e/role-matrix tests it route by route.
 */
export const ROLES = ['admin', 'operator', 'auditor', 'aws-integration'] as const;
export type Role = (typeof ROLES)[number];

export enum Permission {
  ReadInventory = 'inventory:read',
  ManageAuthorities = 'authorities:manage',
  IssueCertificates = 'certificates:issue',
  RevokeCertificates = 'certificates:revoke',
  ReadAudit = 'audit:read',
  ManageApiKeys = 'api-keys:manage',
  ManageClaims = 'claims:manage',
  ManageRotations = 'rotations:manage',
  ManagePolicies = 'iot-policies:manage',
  AcceptPolicyFindings = 'iot-policies:accept-findings',
  RunAudits = 'fleet-audits:run',
  RunSetupCheck = 'setup:check',
  ManageEstLabels = 'est-labels:manage',
  RetryJobs = 'jobs:retry',
  ManageIotTargets = 'iot-targets:manage',
  /** The AWS IoT certificate provider Lambda: a CSR from fleet provisioning by claim → a certificate under the claim's rules. */
  AwsCertificateProvider = 'aws-certificate-provider:use',
  /** The AWS IoT pre-authentication Lambda: the status of a certificate presented at CONNECT (nothing else is read). */
  AwsCertificateStatus = 'aws-certificate-status:read',
  /** The allow-list of TPM manufacturer roots (docs/hardware-identity.md): who may vouch for device hardware. */
  ManageTpmRoots = 'tpm-roots:manage',
  /** Upload secure-element manifests (pre-provisioned identities, docs/secure-elements.md). */
  ImportManifests = 'manifests:import',
  /** Every key may ask who it is (GET /v1/me): the ops console shows what the caller's role allows. */
  ReadSelf = 'self:read',
}

const GRANTS: Record<Role, readonly Permission[]> = {
  // AwsCertificateProvider is the aws-integration role's alone: the route issues as whichever claim the principalId
  // names, without the claim certificate in hand, so an admin key must not be able to use it (docs/aws-fleet-provisioning.md).
  admin: Object.values(Permission).filter((p) => p !== Permission.AwsCertificateProvider),
  // RunSetupCheck stays with admins: the report describes the deployment (URLs, ARNs, CA names, key state).
  // AcceptPolicyFindings stays with admins: accepting a permissive AWS IoT policy is a security decision.
  operator: [Permission.ReadInventory, Permission.IssueCertificates, Permission.RevokeCertificates, Permission.ManageRotations, Permission.ManagePolicies, Permission.RunAudits, Permission.RetryJobs, Permission.ImportManifests, Permission.ReadSelf],
  auditor: [Permission.ReadInventory, Permission.ReadAudit, Permission.ReadSelf],
  // The key the AWS Lambda handlers hold (integrations/aws-lambda/, docs/aws-fleet-provisioning.md): the two calls they
  // make and nothing else (no inventory, no revocation, no claims). Blast radius of a leaked key: it cannot read or
  // change the fleet, but it CAN mint device certificates for any active claim whose claim-certificate fingerprint it
  // knows (fingerprints are not secret: AWS IoT shows them, devices present them), within that claim's rules (window,
  // serial pattern, allow-list, quota) — AWS IoT's authentication of the claim certificate is not re-proved here — and
  // read any certificate's status. Mitigation: one key per AWS account, rotated, readable only by the two Lambdas' roles.
  'aws-integration': [Permission.AwsCertificateProvider, Permission.AwsCertificateStatus, Permission.ReadSelf],
};

/** What a role may do (GET /v1/me tells the caller its own). */
export function grantsOf(role: Role): readonly Permission[] {
  return GRANTS[role];
}

export function roleAllows(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}
