import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { AwsError } from '../http/aws-error';
import { commonName, idOf, issuedBy, keyPolicyProblem, parseCertificate, validAt, validity } from './certificate-checks';
import { alreadyExists, certificateState, certificateValidation, invalid, IotAccount, IotRequest, IotRoute, limitExceeded, notFound } from './iot-api';
import { booleanQuery, certificateIdParam, requiredString } from './params';

export type IotCertificateMode = 'DEFAULT' | 'SNI_ONLY';

export interface IotRegistrationConfig {
  templateBody?: string;
  roleArn?: string;
  templateName?: string;
}

/** What the inspection methods hand out (copies: changing them changes nothing in the stand-in). */
export interface IotCaCertificateView {
  certificateId: string;
  certificateArn: string;
  status: 'ACTIVE' | 'INACTIVE';
  autoRegistrationStatus: 'ENABLE' | 'DISABLE';
  certificateMode: IotCertificateMode;
  certificatePem: string;
  registrationConfig?: IotRegistrationConfig;
  createdAt: Date;
}

export interface CaRecord {
  id: string;
  arn: string;
  pem: string;
  x509: X509Certificate;
  status: 'ACTIVE' | 'INACTIVE';
  autoRegistration: 'ENABLE' | 'DISABLE';
  mode: IotCertificateMode;
  registrationConfig?: IotRegistrationConfig;
  created: number;
  lastModified: number;
  customerVersion: number;
  generationId: string;
}

/** A certificate record changed: AWS IoT bumps its modification date, customer version and generation id. */
export function touch(record: { lastModified: number; customerVersion: number; generationId: string }): void {
  record.lastModified = Date.now();
  record.customerVersion++;
  record.generationId = randomUUID();
}

/**
 * Registered CA certificates: GetRegistrationCode, RegisterCACertificate (a DEFAULT-mode registration proves the CA
 * key with a verification certificate whose CN is the registration code), UpdateCACertificate, DescribeCACertificate,
 * DeleteCACertificate.
 */
export class CaCertificates {
  /** The account's registration code (GetRegistrationCode): a DEFAULT-mode verification certificate carries it as CN. */
  readonly registrationCode = randomBytes(32).toString('hex');
  /** Test hook: when set, GetRegistrationCode answers this instead, so verification certificates come out wrong. */
  staleRegistrationCode?: string;
  readonly records = new Map<string, CaRecord>();
  /** CA certificate ids some other account holds in DEFAULT mode (see claimInAnotherAccount). */
  private readonly foreignDefaultCas = new Set<string>();
  /** Another account of the region (in a multi-account stand-in) holding the CA in DEFAULT mode, if any. */
  defaultElsewhere?: (certificateId: string) => string | undefined;

  constructor(private readonly account: IotAccount) {}

  routes(): IotRoute[] {
    return [
      { method: 'GET', path: /^\/registrationcode$/, operation: 'GetRegistrationCode', handle: () => ({ registrationCode: this.staleRegistrationCode ?? this.registrationCode }) },
      { method: 'POST', path: /^\/cacertificate$/, operation: 'RegisterCACertificate', handle: (req) => this.register(req) },
      { method: 'PUT', path: /^\/cacertificate\/([^/]+)$/, operation: 'UpdateCACertificate', handle: (req) => this.update(req) },
      { method: 'GET', path: /^\/cacertificate\/([^/]+)$/, operation: 'DescribeCACertificate', handle: (req) => this.describe(req) },
      { method: 'DELETE', path: /^\/cacertificate\/([^/]+)$/, operation: 'DeleteCACertificate', handle: (req) => this.delete(req) },
    ];
  }

  arn(certificateId: string): string {
    return this.account.arn(`cacert/${certificateId}`);
  }

  view(certificateId: string): IotCaCertificateView | undefined {
    const record = this.records.get(certificateId.toLowerCase());
    return record && caView(record);
  }

  list(): IotCaCertificateView[] {
    return [...this.records.values()].map(caView);
  }

  /** Registered CAs whose certificate issued this one (name chaining and a signature that verifies). */
  issuing(x509: X509Certificate): CaRecord[] {
    return [...this.records.values()].filter((ca) => issuedBy(x509, ca.x509));
  }

  /** Test hook: set a CA's status or auto-registration behind the service's back. */
  setStatus(certificateId: string, status: 'ACTIVE' | 'INACTIVE', autoRegistration?: 'ENABLE' | 'DISABLE'): void {
    const record = this.records.get(certificateId.toLowerCase());
    if (!record) throw new Error(`no CA certificate ${certificateId}`);
    record.status = status;
    if (autoRegistration) record.autoRegistration = autoRegistration;
    touch(record);
  }

  /**
   * Test hook: another AWS account in the region registers this CA in DEFAULT mode, so this account can then
   * register it only in SNI_ONLY mode (a CA can be registered in DEFAULT mode by one account per region).
   */
  claimInAnotherAccount(caCertificatePem: string): void {
    this.foreignDefaultCas.add(new X509Certificate(caCertificatePem).fingerprint256.replace(/:/g, '').toLowerCase());
  }

  private register(req: IotRequest): unknown {
    const { body, query } = req;
    const mode = (body.certificateMode ?? 'DEFAULT') as IotCertificateMode;
    if (mode !== 'DEFAULT' && mode !== 'SNI_ONLY') throw invalid(`certificateMode must be DEFAULT or SNI_ONLY, not ${String(mode)}`);
    const setAsActive = booleanQuery(query, 'setAsActive') ?? false;
    const allowAutoRegistration = booleanQuery(query, 'allowAutoRegistration') ?? false;
    const registrationConfig = registrationConfigParam(body.registrationConfig);
    if (body.tags !== undefined && !Array.isArray(body.tags)) throw invalid('tags must be a list');

    const ca = parseCertificate(requiredString(body, 'caCertificate'), 'caCertificate');
    if (!ca.ca) throw certificateValidation('The CA certificate is not a CA certificate: basicConstraints CA:TRUE is required');
    if (!validAt(ca, Date.now())) throw certificateValidation('The CA certificate is expired or not yet valid');
    const keyProblem = keyPolicyProblem(ca.publicKey);
    if (keyProblem) throw certificateValidation(`The CA certificate key is not supported: ${keyProblem}`);

    if (mode === 'DEFAULT') {
      if (body.verificationCertificate === undefined) throw invalid('verificationCertificate is required when certificateMode is DEFAULT');
      const verification = parseCertificate(requiredString(body, 'verificationCertificate'), 'verificationCertificate');
      if (!validAt(verification, Date.now())) throw certificateValidation('The verification certificate is expired or not yet valid');
      if (commonName(verification) !== this.registrationCode) {
        throw new AwsError('RegistrationCodeValidationException', 'The verification certificate common name does not match the registration code', 400);
      }
      if (!verification.verify(ca.publicKey)) throw certificateValidation('The verification certificate is not signed by the CA certificate key');
    } else if (body.verificationCertificate !== undefined) {
      throw invalid('verificationCertificate must not be given when certificateMode is SNI_ONLY');
    }

    const id = idOf(ca);
    const arn = this.arn(id);
    const existing = this.records.get(id);
    if (existing) {
      // SNI_ONLY registrations may repeat (as they may across accounts); anything involving DEFAULT may not.
      if (existing.mode === 'SNI_ONLY' && mode === 'SNI_ONLY') return { certificateArn: existing.arn, certificateId: existing.id };
      throw alreadyExists('The CA certificate is already registered', id, arn);
    }
    if (mode === 'DEFAULT' && (this.foreignDefaultCas.has(id) || this.defaultElsewhere?.(id))) {
      throw alreadyExists('The CA certificate is already registered in DEFAULT mode by another account in this region', id, arn);
    }
    if ([...this.records.values()].filter((other) => other.x509.subject === ca.subject).length >= 10) {
      throw limitExceeded('At most 10 CA certificates with the same subject may be registered per account and region');
    }
    const now = Date.now();
    this.records.set(id, {
      id,
      arn,
      pem: ca.toString(),
      x509: ca,
      status: setAsActive ? 'ACTIVE' : 'INACTIVE',
      autoRegistration: allowAutoRegistration ? 'ENABLE' : 'DISABLE',
      mode,
      registrationConfig,
      created: now,
      lastModified: now,
      customerVersion: 1,
      generationId: randomUUID(),
    });
    return { certificateArn: arn, certificateId: id };
  }

  private record(rawId: string): CaRecord {
    const id = certificateIdParam(rawId);
    const record = this.records.get(id);
    if (!record) throw notFound(`The CA certificate ${rawId} does not exist`);
    return record;
  }

  private update(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    const newStatus = req.query.get('newStatus');
    const newAuto = req.query.get('newAutoRegistrationStatus');
    if (newStatus !== null && newStatus !== 'ACTIVE' && newStatus !== 'INACTIVE') throw invalid(`newStatus must be ACTIVE or INACTIVE, not ${newStatus}`);
    if (newAuto !== null && newAuto !== 'ENABLE' && newAuto !== 'DISABLE') throw invalid(`newAutoRegistrationStatus must be ENABLE or DISABLE, not ${newAuto}`);
    const remove = req.body.removeAutoRegistration;
    if (remove !== undefined && typeof remove !== 'boolean') throw invalid('removeAutoRegistration must be a boolean');
    if (remove && req.body.registrationConfig !== undefined) throw invalid('registrationConfig and removeAutoRegistration cannot both be given');
    const registrationConfig = registrationConfigParam(req.body.registrationConfig);
    if (newStatus === 'ACTIVE' && record.mode === 'DEFAULT' && (this.foreignDefaultCas.has(record.id) || this.defaultElsewhere?.(record.id))) {
      throw invalid('The CA certificate is registered in DEFAULT mode by another account');
    }
    if (newStatus) record.status = newStatus;
    if (newAuto) record.autoRegistration = newAuto;
    if (registrationConfig) record.registrationConfig = registrationConfig;
    if (remove) record.registrationConfig = undefined;
    touch(record);
    return {};
  }

  private describe(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    return {
      certificateDescription: {
        certificateArn: record.arn,
        certificateId: record.id,
        status: record.status,
        certificatePem: record.pem,
        ownedBy: this.account.account,
        creationDate: record.created / 1000,
        autoRegistrationStatus: record.autoRegistration,
        lastModifiedDate: record.lastModified / 1000,
        customerVersion: record.customerVersion,
        generationId: record.generationId,
        validity: validity(record.x509),
        certificateMode: record.mode,
      },
      registrationConfig: record.registrationConfig ?? {},
    };
  }

  private delete(req: IotRequest): unknown {
    const record = this.record(req.params[0]);
    if (record.status === 'ACTIVE') throw certificateState('The CA certificate is ACTIVE: set it INACTIVE before deleting it');
    this.records.delete(record.id);
    return {};
  }
}

/** A registrationConfig as AWS IoT checks it; a templateName is refused (the stand-in has no provisioning templates). */
function registrationConfigParam(value: unknown): IotRegistrationConfig | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('registrationConfig must be an object');
  const config = value as Record<string, unknown>;
  for (const field of ['templateBody', 'roleArn', 'templateName']) {
    if (config[field] !== undefined && typeof config[field] !== 'string') throw invalid(`registrationConfig.${field} must be a string`);
  }
  const { templateBody, roleArn, templateName } = config as IotRegistrationConfig;
  if (templateName !== undefined) throw notFound(`The provisioning template ${templateName} does not exist`);
  if (templateBody !== undefined) {
    try {
      JSON.parse(templateBody);
    } catch {
      throw invalid('registrationConfig.templateBody is not valid JSON');
    }
    if (roleArn === undefined) throw invalid('registrationConfig.roleArn is required with a templateBody');
  }
  if (roleArn !== undefined && !/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(roleArn)) {
    throw invalid(`registrationConfig.roleArn is not an IAM role ARN: ${roleArn}`);
  }
  return { templateBody, roleArn, templateName };
}

function caView(record: CaRecord): IotCaCertificateView {
  return {
    certificateId: record.id,
    certificateArn: record.arn,
    status: record.status,
    autoRegistrationStatus: record.autoRegistration,
    certificateMode: record.mode,
    certificatePem: record.pem,
    registrationConfig: record.registrationConfig && { ...record.registrationConfig },
    createdAt: new Date(record.created),
  };
}
