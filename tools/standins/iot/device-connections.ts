import { X509Certificate } from 'node:crypto';
import { CaCertificates } from './ca-certificates';
import { deviceCertificateProblem, idOf, issuedBy, validAt } from './certificate-checks';
import { Certificates } from './certificates';
import { invalid } from './iot-api';
import { IotCertificateRegisteredEvent, RegistrationEvents } from './registration-events';

export type IotDeviceConnectResult =
  | { connected: true }
  | { connected: false; reason: string; event?: IotCertificateRegisteredEvent; topic?: string };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A device's TLS connection to the AWS IoT data plane, as far as its certificate goes: Just-in-Time Registration. */
export class DeviceConnections {
  constructor(
    private readonly cas: CaCertificates,
    private readonly certificates: Certificates,
    private readonly events: RegistrationEvents,
  ) {}

  /**
   * A device's first TLS connection with this certificate (and the chain it presents: the issuing CA, then its
   * parents). Plays Just-in-Time Registration: an unknown certificate issued by a registered, ACTIVE CA with
   * auto-registration on is registered PENDING_ACTIVATION, the connection is dropped and the registration event is
   * published (and published again each time a PENDING_ACTIVATION certificate connects).
   */
  connect(certificatePem: string, chainPem = ''): IotDeviceConnectResult {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(certificatePem);
    } catch {
      throw invalid('certificatePem is not a certificate');
    }
    const chain = (chainPem.match(PEM_CERTIFICATE) ?? []).map((pem) => {
      try {
        return new X509Certificate(pem);
      } catch {
        throw invalid('chainPem holds something that is not a certificate');
      }
    });
    const id = idOf(x509);
    const known = this.certificates.records.get(id);
    const now = Date.now();
    if (known) {
      if (known.status === 'ACTIVE') {
        if (!validAt(x509, now)) return { connected: false, reason: 'the certificate is expired or not yet valid' };
        return { connected: true };
      }
      if (known.status === 'PENDING_ACTIVATION' && known.caCertificateId) {
        return { connected: false, reason: 'the certificate is PENDING_ACTIVATION', ...this.events.publish(known, now) };
      }
      return { connected: false, reason: `the certificate is ${known.status}` };
    }
    if (chain.length > 0 && !issuedBy(x509, chain[0])) {
      return { connected: false, reason: 'the chain does not start with the certificate of the issuing CA' };
    }
    const candidates = this.cas.issuing(x509);
    const ca = candidates.find((c) => chain.some((member) => idOf(member) === c.id)) ?? candidates.find((c) => c.status === 'ACTIVE') ?? candidates[0];
    if (!ca) return { connected: false, reason: 'unknown certificate: not registered and not issued by a registered CA' };
    if (ca.status !== 'ACTIVE') return { connected: false, reason: `the issuing CA ${ca.id} is INACTIVE` };
    if (ca.autoRegistration !== 'ENABLE') return { connected: false, reason: `the issuing CA ${ca.id} does not allow auto-registration` };
    if (!validAt(x509, now)) return { connected: false, reason: 'the certificate is expired or not yet valid' };
    const problem = deviceCertificateProblem(x509);
    if (problem) return { connected: false, reason: problem };
    const record = this.certificates.newRecord(x509, { status: 'PENDING_ACTIVATION', caCertificateId: ca.id, mode: ca.mode, registeredBy: 'JITR' }, now);
    this.certificates.records.set(id, record);
    return { connected: false, reason: 'registered PENDING_ACTIVATION by just-in-time registration; the device must reconnect', ...this.events.publish(record, now) };
  }
}
