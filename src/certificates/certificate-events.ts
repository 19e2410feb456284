import { CertificateRecord, IotStatus } from './certificate';

/** The two fields of an authority's AWS IoT registration that decide an issuance's follow-up (read with the issuance's other facts). */
export interface IssueRegistration {
  status: string;
  deviceRegistration: string;
}

/** What follows an issuance outside this service, decided before the transaction (reads only). */
export interface IssueFollowUp {
  iotStatus: IotStatus;
  schedule(record: CertificateRecord): Promise<void>;
}

/**
 * Port: what must follow a certificate's state changes outside this service (AWS IoT). `prepareIssue`
 * runs before the issuance transaction; `schedule` and `revoked` run inside the transaction of the change,
 * so what they schedule (outbox jobs) commits with it.
 */
export abstract class CertificateEvents {
  /** `iotTargetId`: the IoT target the certificate goes to (docs/iot-targets.md); the default one when absent. */
  /**
   * `createdByAws`: AWS IoT creates the certificate itself from our answer (the certificate provider of fleet
   * provisioning, docs/aws-fleet-provisioning.md): nothing to register, but its revocation must still reach AWS IoT.
   */
  /**
   * `registration`: the authority's registration in the target, when the caller read it already (null: none); read
   * here when undefined.
   */
  abstract prepareIssue(authorityId: string, iotTargetId?: string, options?: { createdByAws?: boolean; registration?: IssueRegistration | null }): Promise<IssueFollowUp>;
  abstract revoked(record: CertificateRecord): Promise<void>;
  /**
   * `old` was renewed by `replacement`: after `graceUntil` the old certificate leaves AWS IoT (detached from its
   * thing, INACTIVE) — once the replacement is in place there.
   */
  abstract superseded(old: CertificateRecord, replacement: CertificateRecord, graceUntil: Date): Promise<void>;
}
