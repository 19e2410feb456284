/** How AWS IoT authenticates devices under a CA (RegisterCACertificate certificateMode). */
export type CertificateMode = 'DEFAULT' | 'SNI_ONLY';

export interface RegisterCaInput {
  caCertificatePem: string;
  /** Required for DEFAULT: CN = the account's registration code, signed by the CA key. */
  verificationCertificatePem?: string;
  certificateMode: CertificateMode;
  setAsActive: boolean;
  allowAutoRegistration: boolean;
  registrationConfig?: { templateBody: string; roleArn: string };
}

/** A CA certificate as AWS IoT describes it (DescribeCACertificate). */
export interface DescribedCaCertificate {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  status: string;
  autoRegistrationStatus: string;
  certificateMode: string;
  registrationConfig?: { templateBody?: string; roleArn?: string; templateName?: string };
}

/** A device certificate as AWS IoT describes it (DescribeCertificate). */
export interface DescribedCertificate {
  certificateArn: string;
  status: string;
  certificatePem: string;
  /** The registered CA it was registered under; absent for RegisterCertificateWithoutCA. */
  caCertificateId?: string;
}

/**
 * What a Register* call that met ResourceAlreadyExistsException leaves the caller: the resource AWS named (its
 * `resourceId`), described. The caller decides whether it is the one it sent (a retry after a lost answer) and adopts
 * it, or not. See docs/aws-behaviours.md "Adoption after a lost response".
 */
export interface AlreadyRegistered<T> {
  existing: T;
}

/**
 * A topic rule destination's status (API_TopicRuleDestination): IN_PROGRESS (created, not confirmed), ENABLED
 * (confirmed, traffic allowed), DISABLED (confirmed, no traffic), ERROR (confirmation timed out), DELETING.
 */
export type TopicRuleDestinationStatus = 'IN_PROGRESS' | 'ENABLED' | 'DISABLED' | 'ERROR' | 'DELETING';

/** A topic rule destination as AWS IoT describes it (GetTopicRuleDestination). */
export interface DescribedTopicRuleDestination {
  arn: string;
  /** As AWS answers it; a value this code does not know stays a string. */
  status: TopicRuleDestinationStatus | string;
  statusReason?: string;
  confirmationUrl?: string;
}

/** How a thing is created: its thing type (which must exist) and its attributes. */
export interface CreateThingOptions {
  thingTypeName?: string;
  attributes?: Record<string, string>;
}

/** A job (AWS IoT Jobs) sent to things and thing groups, e.g. one wave of a certificate renewal campaign. */
export interface CreateJobInput {
  /**
   * 1 to 64 characters of [a-zA-Z0-9_-], unique in the account and region. Derive it from what the job is for (the
   * campaign and wave), so that a retry after a lost answer names the same job.
   */
  jobId: string;
  /** Thing and thing group ARNs: 1 to 100 (AWS IoT's cap on a job's targets); a larger fleet goes through thing groups. */
  targets: string[];
  /** The job document the devices receive; serialised as JSON, at most 32 KB. */
  document: Record<string, unknown>;
  /** At most 2028 characters, no control characters. */
  description?: string;
}

/**
 * Port: the AWS IoT control plane as this service uses it. The adapter maps AWS errors to DomainErrors
 * (refusals → 502/409, throttling and outages → 503), so callers never see SDK types.
 */
export abstract class IotRegistry {
  abstract registrationCode(): Promise<string>;
  /**
   * Registers the CA. When AWS IoT answers ResourceAlreadyExists and can describe the CA it names, that description
   * comes back as `existing` (nothing was registered by this call); otherwise the conflict is thrown (IOT_CONFLICT).
   */
  abstract registerCaCertificate(input: RegisterCaInput): Promise<{ certificateId: string; certificateArn: string } & Partial<AlreadyRegistered<DescribedCaCertificate>>>;
  /** The CA certificate as AWS IoT holds it, or undefined when AWS IoT does not know it (in this account). */
  abstract describeCaCertificate(certificateId: string): Promise<DescribedCaCertificate | undefined>;
  /** Sets the CA's status and auto-registration, and its JITP template when one is given (UpdateCACertificate). */
  abstract updateCaCertificate(
    certificateId: string,
    update: { status: 'ACTIVE' | 'INACTIVE'; autoRegistration: boolean; registrationConfig?: { templateBody: string; roleArn: string } },
  ): Promise<void>;
  /** Sets the CA INACTIVE and turns auto-registration off. */
  abstract deactivateCaCertificate(certificateId: string): Promise<void>;

  /**
   * Registers a device certificate under its (registered) CA with the given status. On ResourceAlreadyExists the
   * certificate AWS names is described and returned as `existing` for the caller to check and adopt.
   */
  abstract registerCertificate(
    certificatePem: string,
    caCertificatePem: string,
    status: 'INACTIVE' | 'REVOKED',
  ): Promise<{ certificateArn: string } & Partial<AlreadyRegistered<DescribedCertificate>>>;
  /**
   * Registers a device certificate without a registered CA (RegisterCertificateWithoutCA: multi-account registration;
   * devices must send SNI). Used for pre-provisioned identities from secure-element manifests (docs/secure-elements.md).
   * On ResourceAlreadyExists the certificate AWS names is described and returned as `existing`.
   */
  abstract registerCertificateWithoutCa(
    certificatePem: string,
    status: 'ACTIVE' | 'INACTIVE' | 'REVOKED',
  ): Promise<{ certificateArn: string } & Partial<AlreadyRegistered<DescribedCertificate>>>;
  /** The certificate as AWS IoT holds it, or undefined when AWS IoT does not know it. */
  abstract describeCertificate(certificateId: string): Promise<DescribedCertificate | undefined>;
  abstract updateCertificate(certificateId: string, status: 'ACTIVE' | 'INACTIVE' | 'REVOKED'): Promise<void>;
  /**
   * Creates the thing (of the given type, with the given attributes), or finds it when it exists. A thing that
   * exists with another type or other attributes is left as it is: the thing is there, which is what counts.
   */
  abstract createThing(thingName: string, options?: CreateThingOptions): Promise<void>;
  /** Adds the thing to a (static) thing group; a thing already in the group counts as done. */
  abstract addThingToThingGroup(thingGroupName: string, thingName: string): Promise<void>;
  /** Whether the thing type exists (DescribeThingType). */
  abstract thingTypeExists(thingTypeName: string): Promise<boolean>;
  /** Whether the thing group exists (DescribeThingGroup). */
  abstract thingGroupExists(thingGroupName: string): Promise<boolean>;
  abstract attachPolicy(policyName: string, targetArn: string): Promise<void>;
  abstract attachThingPrincipal(thingName: string, principalArn: string): Promise<void>;
  /**
   * Detaches the principal (a certificate ARN) from the thing. A principal that is not attached, a certificate or a
   * thing that is gone, counts as done. AWS applies the detachment asynchronously: ListThingPrincipals may still show
   * it for a few seconds.
   */
  abstract detachThingPrincipal(thingName: string, principalArn: string): Promise<void>;
  /** The thing's ARN (DescribeThing), or undefined when AWS IoT does not know the thing. For createJob's targets. */
  abstract thingArn(thingName: string): Promise<string | undefined>;
  /**
   * Creates a snapshot job for the targets. A job that already exists with this id counts as done (its ARN is
   * returned, whatever its targets and document: the id is the caller's idempotency key), unless it is being deleted.
   */
  abstract createJob(input: CreateJobInput): Promise<{ jobArn: string }>;
  abstract confirmTopicRuleDestination(confirmationToken: string): Promise<void>;
  /** The destination (GetTopicRuleDestination). AWS IoT answers an unknown ARN with an error, not an empty result. */
  abstract getTopicRuleDestination(arn: string): Promise<DescribedTopicRuleDestination>;
  /**
   * Sets the destination ENABLED (UpdateTopicRuleDestination). AWS allows it only from DISABLED ("You can only enable
   * a destination that's in DISABLED status"), so callers read the status first.
   */
  abstract enableTopicRuleDestination(arn: string): Promise<void>;

  // ---- managed policies and fleet audits ----
  /** The policy's default version (document and id), or undefined when AWS IoT has no such policy. */
  abstract getPolicy(policyName: string): Promise<{ document: string; defaultVersionId: string } | undefined>;
  abstract createPolicy(policyName: string, document: string): Promise<{ versionId: string }>;
  abstract createPolicyVersion(policyName: string, document: string, setAsDefault: boolean): Promise<{ versionId: string }>;
  abstract listPolicyVersions(policyName: string): Promise<{ versionId: string; isDefault: boolean; createdAt: Date | undefined }[]>;
  abstract deletePolicyVersion(policyName: string, versionId: string): Promise<void>;
  /** Names of the policies attached to a principal (certificate ARN). */
  abstract listAttachedPolicies(targetArn: string): Promise<string[]>;
  /**
   * Every certificate AWS IoT holds under a registered CA (by the CA's certificate id), with its status: one
   * ListCertificatesByCA call per page of `pageSize` (1-250, AWS's limit; default 250).
   */
  abstract listCertificatesByCa(caCertificateId: string, pageSize?: number): Promise<{ certificateId: string; certificateArn: string; status: string }[]>;
}
