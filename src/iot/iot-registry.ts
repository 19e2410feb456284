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

/** How a thing is created: its thing type (which must exist) and its attributes. */
export interface CreateThingOptions {
  thingTypeName?: string;
  attributes?: Record<string, string>;
}

/**
 * Port: the AWS IoT control plane as this service uses it. The adapter maps AWS errors to DomainErrors
 * (refusals → 502/409, throttling and outages → 503), so callers never see SDK types.
 */
export abstract class IotRegistry {
  abstract registrationCode(): Promise<string>;
  abstract registerCaCertificate(input: RegisterCaInput): Promise<{ certificateId: string; certificateArn: string }>;
  /** Sets the CA INACTIVE and turns auto-registration off. */
  abstract deactivateCaCertificate(certificateId: string): Promise<void>;

  /** Registers a device certificate under its (registered) CA with the given status; an existing registration counts as done. */
  abstract registerCertificate(certificatePem: string, caCertificatePem: string, status: 'INACTIVE' | 'REVOKED'): Promise<{ certificateArn: string }>;
  /** The certificate's ARN and status, or undefined when AWS IoT does not know it. */
  abstract describeCertificate(certificateId: string): Promise<{ certificateArn: string; status: string } | undefined>;
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
  abstract confirmTopicRuleDestination(confirmationToken: string): Promise<void>;
}
