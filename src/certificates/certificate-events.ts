import { CertificateRecord, IotStatus } from './certificate';

/**
 * Port: what must follow a certificate's state changes outside this service (AWS IoT). Both methods run
 * inside the transaction of the change, so what they schedule (outbox jobs) commits with it.
 */
export abstract class CertificateEvents {
  /** Returns the AWS IoT status the new certificate starts with ('pending' when registration was scheduled). */
  abstract issued(record: CertificateRecord): Promise<IotStatus>;
  abstract revoked(record: CertificateRecord): Promise<void>;
}
