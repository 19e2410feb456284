/** A managed AWS IoT policy: the current version of a named template (the AWS IoT policy of the same name). */
export interface PolicyTemplate {
  name: string;
  version: number;
  /** The policy JSON as stored and sent to AWS IoT. */
  document: string;
  acceptedFindings: string[];
  iotStatus: 'pending' | 'synced' | 'failed';
  iotLastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface PolicyTemplateVersion {
  name: string;
  version: number;
  document: string;
  acceptedFindings: string[];
  createdAt: string;
  createdBy: string | null;
}

/** Port: managed policy templates and their version history. */
export abstract class PolicyTemplateRepository {
  abstract find(name: string): Promise<PolicyTemplate | null>;
  abstract list(): Promise<PolicyTemplate[]>;
  abstract versions(name: string): Promise<PolicyTemplateVersion[]>;
  /** Stores version 1, unless the template exists (then false). */
  abstract insertFirst(template: PolicyTemplate, createdBy: string | null): Promise<boolean>;
  /** Stores the next version when `version - 1` is current (optimistic); false when someone else wrote meanwhile. */
  abstract insertNext(template: PolicyTemplate, createdBy: string | null): Promise<boolean>;
  abstract setIotStatus(name: string, version: number, status: PolicyTemplate['iotStatus'], lastError: string | null): Promise<void>;
}
