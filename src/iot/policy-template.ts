
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
