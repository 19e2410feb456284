import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { AwsError } from '../http/aws-error';
import { CaRecord, CaCertificates, IotCertificateMode, touch } from './ca-certificates';
import { deviceCertificateProblem, idOf, issuedBy, parseCertificate, validAt, validity } from './certificate-checks';
import { foreignCertificate } from './foreign-certificate';
import { alreadyExists, certificateState, certificateValidation, invalid, IotAccount, IotRequest, IotRoute, notFound } from './iot-api';
import { booleanQuery, certificateIdParam, page, pageSizeQuery, requiredString } from './params';

export type IotCertificateStatus = 'ACTIVE' | 'INACTIVE' | 'REVOKED' | 'PENDING_TRANSFER' | 'REGISTER_INACTIVE' | 'PENDING_ACTIVATION';

export const CERTIFICATE_STATUSES: IotCertificateStatus[] = ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER', 'REGISTER_INACTIVE', 'PENDING_ACTIVATION'];

export interface IotCertificateView {
  certificateId: string;
  certificateArn: string;
  status: IotCertificateStatus;
  caCertificateId?: string;
  certificateMode: IotCertificateMode;
  certificatePem: string;
  createdAt: Date;
  /** How it got here: an API call, a device's first connection (JITR), or the registerForeignCertificate test hook. */
  registeredBy: 'RegisterCertificate' | 'RegisterCertificateWithoutCA' | 'JITR' | 'Foreign' | 'CreateCertificateFromCsr';
}

export interface CertificateRecord {
  id: string;
  arn: string;
  pem: string;
  x509: X509Certificate;
  status: IotCertificateStatus;
  caCertificateId?: string;
  mode: IotCertificateMode;
  created: number;
  lastModified: number;
  customerVersion: number;
  generationId: string;
  registeredBy: IotCertificateView['registeredBy'];
}

/**
 * Registered device certificates: RegisterCertificate (its issuing CA registered and ACTIVE), RegisterCertificateWithoutCA,
 * UpdateCertificate (REVOKED stays REVOKED), DescribeCertificate, ListCertificatesByCA.
 */
export class Certificates {
  readonly records = new Map<string, CertificateRecord>();

  constructor(
    private readonly account: IotAccount,
    private readonly cas: CaCertificates,
  ) {}

  routes(): IotRoute[] {
    return [
      { method: 'POST', path: /^\/certificate\/register$/, operation: 'RegisterCertificate', handle: (req) => this.register(req, true) },
      { method: 'POST', path: /^\/certificate\/register-no-ca$/, operation: 'RegisterCertificateWithoutCA', handle: (req) => this.register(req, false) },
      { method: 'PUT', path: /^\/certificates\/([^/]+)$/, operation: 'UpdateCertificate', handle: (req) => this.update(req) },
      { method: 'GET', path: /^\/certificates\/([^/]+)$/, operation: 'DescribeCertificate', handle: (req) => this.describe(req) },
      { method: 'GET', path: /^\/certificates-by-ca\/([^/]+)$/, operation: 'ListCertificatesByCA', handle: (req) => this.listByCa(req) },
    ];
  }

  arn(certificateId: string): string {
    return this.account.arn(`cert/${certificateId}`);
  }

  /** A new record for a certificate taken in (by an API call, JITR or a test hook). */
  newRecord(x509: X509Certificate, fields: Pick<CertificateRecord, 'status' | 'caCertificateId' | 'mode' | 'registeredBy'>, now = Date.now()): CertificateRecord {
    const id = idOf(x509);
    return { id, arn: this.arn(id), pem: x509.toString(), x509, ...fields, created: now, lastModified: now, customerVersion: 1, generationId: randomUUID() };
  }

  /**
   * A certificate the certificate provider signed for CreateCertificateFromCsr (the data-plane stand-in, tools/standins/iot-data):
   * registered PENDING_ACTIVATION (RegisterThing activates it), under its issuing CA when that is registered. The same
   * certificate again (a retried request answered with the certificate issued before) keeps its record.
   */
  takeInFromProvider(pem: string, now = Date.now()): CertificateRecord {
    const x509 = parseCertificate(pem, 'certificatePem');
    const existing = this.records.get(idOf(x509));
    if (existing) return existing;
    const ca = this.cas.issuing(x509).find((c) => c.status === 'ACTIVE');
    const record = this.newRecord(x509, { status: 'PENDING_ACTIVATION', caCertificateId: ca?.id, mode: ca ? ca.mode : 'SNI_ONLY', registeredBy: 'CreateCertificateFromCsr' }, now);
    this.records.set(record.id, record);
    return record;
  }

  view(certificateId: string): IotCertificateView | undefined {
    const record = this.records.get(certificateId.toLowerCase());
    return record && certificateView(record);
  }

  list(): IotCertificateView[] {
    return [...this.records.values()].map(certificateView);
  }

  /** Test hook: change a certificate's status behind the service's back (an operator in the console, say). */
  setStatus(certificateId: string, status: IotCertificateStatus): void {
    if (!CERTIFICATE_STATUSES.includes(status)) throw new Error(`unknown certificate status ${status}`);
    const record = this.records.get(certificateId.toLowerCase());
    if (!record) throw new Error(`no certificate ${certificateId}`);
    record.status = status;
    touch(record);
  }

  /** A certificate ARN of this account and region naming a registered certificate. */
  principal(principal: string, what: string): CertificateRecord {
    const match = /^arn:aws:iot:([a-z0-9-]+):(\d{12}):cert\/([0-9a-f]{64})$/.exec(principal);
    if (!match) throw invalid(`${what} ${principal} is not a certificate ARN (the stand-in supports certificate principals only)`);
    const record = this.records.get(match[3]);
    if (!record || match[1] !== this.account.region || match[2] !== this.account.account) throw notFound(`The certificate ${principal} does not exist`);
    return record;
  }

  /**
   * Test hook: an AWS IoT certificate under one of the registered CAs that the service never issued (someone with
   * console access registering a certificate, or one made with a copy of the CA key). Without `certificatePem` the
   * stand-in makes one: a P-256 device certificate whose issuer is the CA's subject, signed by a throwaway key (so it
   * names the CA but its signature does not verify with the CA key: a forgery as far as a verifier can tell). A given
   * `certificatePem` must name the CA's subject as issuer (unless `anyIssuer`: a certificate someone registered under
   * another CA, as AWS allows when several CAs share a subject); its signature is not checked. `withoutCa`: registered
   * as RegisterCertificateWithoutCA leaves it (no caCertificateId; `caCertificateId` is then only checked to exist).
   * Status ACTIVE by default. It shows in ListCertificatesByCA and DescribeCertificate like any other.
   */
  async registerForeign(
    caCertificateId: string,
    options: { certificatePem?: string; status?: IotCertificateStatus; commonName?: string; anyIssuer?: boolean; withoutCa?: boolean } = {},
  ): Promise<IotCertificateView> {
    const ca = this.cas.records.get(caCertificateId.toLowerCase());
    if (!ca) throw notFound(`no registered CA certificate ${caCertificateId}`);
    const status = options.status ?? 'ACTIVE';
    if (!CERTIFICATE_STATUSES.includes(status)) throw invalid(`status must be one of ${CERTIFICATE_STATUSES.join(', ')}`);
    let x509: X509Certificate;
    if (options.certificatePem !== undefined) {
      x509 = parseCertificate(options.certificatePem, 'certificatePem');
      if (x509.issuer !== ca.x509.subject && !options.anyIssuer && !options.withoutCa) throw certificateValidation(`the certificate's issuer is not the subject of CA ${ca.id}`);
    } else {
      x509 = await foreignCertificate(ca.x509, options.commonName ?? `foreign-${randomBytes(4).toString('hex')}`);
    }
    const id = idOf(x509);
    if (this.records.has(id)) throw alreadyExists('The certificate is already registered', id, this.arn(id));
    this.records.set(
      id,
      this.newRecord(x509, { status, caCertificateId: options.withoutCa ? undefined : ca.id, mode: options.withoutCa ? 'SNI_ONLY' : ca.mode, registeredBy: 'Foreign' }),
    );
    return this.view(id)!;
  }

  private register(req: IotRequest, withCa: boolean): unknown {
    const { body, query } = req;
    const certificate = parseCertificate(requiredString(body, 'certificatePem'), 'certificatePem');
    const setAsActive = withCa ? booleanQuery(query, 'setAsActive') : undefined;
    const status = (body.status ?? (setAsActive ? 'ACTIVE' : 'INACTIVE')) as IotCertificateStatus;
    if (!['ACTIVE', 'INACTIVE', 'REVOKED', 'REGISTER_INACTIVE'].includes(status)) {
      throw invalid(`status must be ACTIVE, INACTIVE or REVOKED, not ${String(status)}`);
    }
    if (!validAt(certificate, Date.now())) throw certificateValidation('The certificate is expired or not yet valid');
    const problem = deviceCertificateProblem(certificate);
    if (problem) throw certificateValidation(problem);

    let ca: CaRecord | undefined;
    if (withCa) {
      if (body.caCertificatePem !== undefined) {
        const given = parseCertificate(requiredString(body, 'caCertificatePem'), 'caCertificatePem');
        ca = this.cas.records.get(idOf(given));
        if (!ca) throw certificateValidation('The CA certificate is not registered');
        if (!issuedBy(certificate, ca.x509)) throw certificateValidation('The certificate is not signed by the given CA certificate');
      } else {
        const candidates = this.cas.issuing(certificate);
        if (candidates.length === 0) throw certificateValidation('The certificate is not signed by a registered CA certificate');
        if (candidates.length > 1) {
          throw new AwsError(
            'CertificateConflictException',
            'Unable to verify the CA certificate used to sign the certificate: several registered CA certificates have its subject and public key; give caCertificatePem',
            409,
          );
        }
        ca = candidates[0];
      }
      if (ca.status !== 'ACTIVE') throw invalid(`The CA certificate ${ca.id} is not ACTIVE`);
    }

    const id = idOf(certificate);
    const arn = this.arn(id);
    if (this.records.has(id)) throw alreadyExists('The certificate is already provisioned or registered', id, arn);
    this.records.set(
      id,
      this.newRecord(certificate, {
        status,
        caCertificateId: ca?.id,
        mode: ca ? ca.mode : 'SNI_ONLY',
        registeredBy: withCa ? 'RegisterCertificate' : 'RegisterCertificateWithoutCA',
      }),
    );
    return { certificateArn: arn, certificateId: id };
  }

  private record(rawId: string): CertificateRecord {
    const id = certificateIdParam(rawId);
    const record = this.records.get(id);
    if (!record) throw notFound(`The certificate ${rawId} does not exist`);
    return record;
  }

  private update(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const newStatus = req.query.get('newStatus') as IotCertificateStatus | null;
    if (newStatus === null) throw invalid('newStatus is required');
    if (!CERTIFICATE_STATUSES.includes(newStatus)) throw invalid(`newStatus must be one of ${CERTIFICATE_STATUSES.join(', ')}, not ${newStatus}`);
    if (newStatus === 'PENDING_TRANSFER' || newStatus === 'PENDING_ACTIVATION') {
      throw invalid(`A certificate cannot be set to ${newStatus} with UpdateCertificate`);
    }
    if (record.status === 'REVOKED' && newStatus !== 'REVOKED') {
      throw certificateState(`The certificate is REVOKED: its status cannot be changed to ${newStatus}`);
    }
    if (record.status === 'PENDING_TRANSFER') throw certificateState('The certificate is PENDING_TRANSFER: accept, reject or cancel the transfer first');
    record.status = newStatus;
    touch(record);
    return {};
  }

  private describe(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    return {
      certificateDescription: {
        certificateArn: record.arn,
        certificateId: record.id,
        caCertificateId: record.caCertificateId,
        status: record.status,
        certificatePem: record.pem,
        ownedBy: this.account.account,
        creationDate: record.created / 1000,
        lastModifiedDate: record.lastModified / 1000,
        customerVersion: record.customerVersion,
        generationId: record.generationId,
        validity: validity(record.x509),
        certificateMode: record.mode,
      },
    };
  }

  private listByCa(req: IotRequest): unknown {
    const caId = certificateIdParam(req.params[0]);
    const ascending = booleanQuery(req.query, 'isAscendingOrder') ?? false;
    const certificates = [...this.records.values()]
      .filter((c) => c.caCertificateId === caId)
      .sort((a, b) => (ascending ? a.created - b.created : b.created - a.created))
      .map((c) => ({ certificateArn: c.arn, certificateId: c.id, status: c.status, certificateMode: c.mode, creationDate: c.created / 1000 }));
    const { items, next } = page(certificates, pageSizeQuery(req.query, 'pageSize'), req.query.get('marker'));
    return { certificates: items, nextMarker: next };
  }
}

function certificateView(record: CertificateRecord): IotCertificateView {
  return {
    certificateId: record.id,
    certificateArn: record.arn,
    status: record.status,
    caCertificateId: record.caCertificateId,
    certificateMode: record.mode,
    certificatePem: record.pem,
    createdAt: new Date(record.created),
    registeredBy: record.registeredBy,
  };
}
