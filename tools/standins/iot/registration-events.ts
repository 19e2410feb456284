import { CertificateRecord } from './certificates';
import { IotAccount } from './iot-api';

/**
 * The message AWS IoT publishes to `$aws/events/certificates/registered/<caCertificateId>`. The developer guide
 * ("Register a client certificate when the client connects to AWS IoT (JITR)",
 * https://docs.aws.amazon.com/iot/latest/developerguide/auto-register-device-cert.html) shows only placeholders;
 * events as AWS delivers them carry `timestamp` as a JSON number of epoch milliseconds and
 * `certificateRegistrationTimestamp` as a string of epoch milliseconds (null has been seen too).
 */
export interface IotCertificateRegisteredEvent {
  certificateId: string;
  caCertificateId: string;
  timestamp: number;
  certificateStatus: 'PENDING_ACTIVATION';
  awsAccountId: string;
  certificateRegistrationTimestamp: string | null;
}

/**
 * The certificate registration events AWS IoT publishes on its MQTT broker. No broker runs here: an event is kept
 * (`published`) and handed to the listener (`onEvent`); a test forwards it where a topic rule would.
 */
export class RegistrationEvents {
  /** Certificate registration events published so far (JITR), oldest first. */
  readonly published: { topic: string; event: IotCertificateRegisteredEvent }[] = [];
  /** Test hook: told of every certificate registration event as it is published. */
  onEvent?: (topic: string, event: IotCertificateRegisteredEvent) => void;

  constructor(private readonly account: IotAccount) {}

  /** Publishes the registration event of a certificate JITR registered (PENDING_ACTIVATION, with its CA). */
  publish(record: CertificateRecord, now: number): { event: IotCertificateRegisteredEvent; topic: string } {
    const event: IotCertificateRegisteredEvent = {
      certificateId: record.id,
      caCertificateId: record.caCertificateId!,
      timestamp: now,
      certificateStatus: 'PENDING_ACTIVATION',
      awsAccountId: this.account.account,
      certificateRegistrationTimestamp: String(record.created),
    };
    const topic = `$aws/events/certificates/registered/${record.caCertificateId}`;
    this.published.push({ topic, event });
    this.onEvent?.(topic, event);
    return { event, topic };
  }
}
