import { createHash, generateKeyPairSync, KeyObject, randomBytes, randomUUID, sign, X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { signCertificate } from '../../../src/pki/certificate';
import { basicConstraints, extendedKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../../../src/pki/extensions';
import { buildName } from '../../../src/pki/names';
import { OID } from '../../../src/pki/oids';
import { randomSerial } from '../../../src/pki/serial';

/**
 * A local stand-in for the AWS IoT control plane that speaks its wire protocol (REST-JSON: the operation is
 * the method and path, inputs sit in the path, the query string, the `x-amzn-principal` header or a JSON body
 * exactly where @aws-sdk/client-iot puts them; errors carry the exception name in `x-amzn-ErrorType` and a
 * JSON body `{"message"}`, with the HTTP status of the AWS IoT model), so the real client can be pointed at it
 * with an endpoint override. It validates like AWS IoT: certificate ids are the SHA-256 of the DER, CA
 * registration checks the verification certificate against the registration code and the CA key, device
 * certificates need their issuing CA registered and ACTIVE, revoked certificates stay revoked. SigV4 must be
 * present; its signature is not checked.
 *
 * Knobs (constructor or `POST /_standin/config`): added latency, a token-bucket rate for the account (and
 * optionally per operation) above which calls get ThrottlingException, a random throttle probability,
 * failure modes (HTTP 503 ServiceUnavailableException or dropped connections), and lost answers (`loseResponses`: the
 * operation takes effect, then the client sees a connection reset or an HTTP 500).
 *
 * Test hooks over HTTP (no SigV4 needed):
 * - `GET /_standin/stats`: calls per operation (refused ones included), throttled counts, bucket level;
 * - `POST /_standin/config`: change knobs;
 * - `POST /_standin/devices/connect {"certificatePem", "chainPem"}`: a device's first TLS connection (JITR);
 * - `POST /_standin/certificates/{certificateId}/status {"status"}`: change a status behind the service's back;
 * - `POST /_standin/cacertificates/{caCertificateId}/foreign-certificates {"certificatePem"?, "status"?, "commonName"?}`:
 *   a certificate under one of the registered CAs that the service never issued (see registerForeignCertificate);
 * - `GET /_standin/policies/{policyName}`: a policy with its default version and every version (see policy);
 * - `GET /_standin/confirmations`: the topic rule destination tokens confirmed so far;
 * - `GET /_standin/destinations`: the topic rule destinations, each with its status and the confirmation message AWS
 *   would POST to its confirmation URL; `POST /_standin/destinations {"arn"?, "confirmationUrl"?, "status"?,
 *   "confirmationToken"?}` seeds one (see seedTopicRuleDestination);
 * - `GET /_standin/events`: the certificate registration events "published" so far.
 *
 * Thing types and thing groups are made through the API (CreateThingType, DeprecateThingType, CreateThingGroup) or,
 * in code, with `createThingType`, `deprecateThingType` and `createThingGroup`; `thing(name)` shows a thing's type
 * and groups, `thingType(name)` and `thingGroup(name)` the rest.
 *
 * Policies keep versions like AWS IoT (CreatePolicy makes version 1, the default; CreatePolicyVersion adds one, at most
 * five kept, ids never reused; SetDefaultPolicyVersion; DeletePolicyVersion refuses the default version; GetPolicy
 * answers the default version's document). `policy(name)` shows the default document and every version.
 *
 * Topic rule destinations (CreateTopicRuleDestination, GetTopicRuleDestination, ListTopicRuleDestinations,
 * UpdateTopicRuleDestination, ConfirmTopicRuleDestination) move through AWS's states: created IN_PROGRESS, DISABLED once
 * confirmed with their token, ENABLED only from DISABLED (see confirmTopicRuleDestination). No message is delivered:
 * the stand-in has no rules, and a test forwards the confirmation message (and JITR events) itself.
 *
 * Jobs (CreateJob, DescribeJob, GetJobDocument, ListJobs) keep their targets and document; `jobs()` and `job(id)` (or
 * `GET /_standin/jobs`) show them with the document parsed, and `setJobStatus` moves a job along (no job executions
 * are played).
 */
export interface IotStandInKnobs {
  latencyMs: number;
  /** Sustained requests per second for the whole account before ThrottlingException; 0 = unlimited. */
  tps: number;
  /** Token-bucket capacity (requests allowed at once after a quiet spell); defaults to one second of tps. */
  burst?: number;
  /** Per-operation quotas on top of `tps` (AWS IoT publishes them per API), e.g. `{ RegisterCertificate: 10 }`. */
  operationTps?: Record<string, number>;
  /** Probability in [0, 1] that any call is throttled regardless of rate. */
  throttleProbability: number;
  failureMode: 'none' | 'http503' | 'drop';
  /**
   * Answers to lose, by operation: the next N successful calls of the operation take effect (the registration is
   * done) and then the client sees, instead of the answer, a connection reset (`lostResponseAs: 'reset'`, the default)
   * or an HTTP 500 InternalFailureException. Each lost answer counts one down; `lostResponses` in the stats.
   */
  loseResponses?: Record<string, number>;
  lostResponseAs?: 'reset' | 'http500';
  /**
   * Conflicts to answer, by operation: the next N calls of the operation are refused with
   * ConflictingResourceUpdateException (HTTP 409, "two pending updates cause a conflict") and change nothing. Each
   * counts one down; `conflicts` in the stats.
   */
  conflictingUpdates?: Record<string, number>;
}

export type IotCertificateStatus = 'ACTIVE' | 'INACTIVE' | 'REVOKED' | 'PENDING_TRANSFER' | 'REGISTER_INACTIVE' | 'PENDING_ACTIVATION';
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

export interface IotCertificateView {
  certificateId: string;
  certificateArn: string;
  status: IotCertificateStatus;
  caCertificateId?: string;
  certificateMode: IotCertificateMode;
  certificatePem: string;
  createdAt: Date;
  /** How it got here: an API call, a device's first connection (JITR), or the registerForeignCertificate test hook. */
  registeredBy: 'RegisterCertificate' | 'RegisterCertificateWithoutCA' | 'JITR' | 'Foreign';
}

export interface IotThingView {
  thingName: string;
  thingArn: string;
  thingId: string;
  /** The thing's type, when it was created with one. */
  thingTypeName?: string;
  attributes: Record<string, string>;
  /** Names of the thing groups the thing was added to, in order. */
  thingGroups: string[];
  version: number;
}

export interface IotThingTypeView {
  thingTypeName: string;
  thingTypeArn: string;
  thingTypeId: string;
  description?: string;
  searchableAttributes: string[];
  deprecated: boolean;
  createdAt: Date;
}

export interface IotThingGroupView {
  thingGroupName: string;
  thingGroupArn: string;
  thingGroupId: string;
  description?: string;
  attributes: Record<string, string>;
  parentGroupName?: string;
  /** Names of the things in the group, in the order they were added. */
  things: string[];
  version: number;
  createdAt: Date;
}

export interface IotPolicyVersionView {
  versionId: string;
  isDefaultVersion: boolean;
  /** The document, parsed. */
  document: unknown;
  /** The document exactly as sent. */
  documentText: string;
  createdAt: Date;
}

export interface IotPolicyView {
  policyName: string;
  policyArn: string;
  defaultVersionId: string;
  /** The default version's document, parsed (what devices get). */
  document: unknown;
  documentText: string;
  /** Every kept version, oldest first. */
  versions: IotPolicyVersionView[];
  createdAt: Date;
  lastModifiedAt: Date;
}

export type IotJobStatus = 'IN_PROGRESS' | 'CANCELED' | 'COMPLETED' | 'DELETION_IN_PROGRESS' | 'SCHEDULED';

export interface IotJobView {
  jobId: string;
  jobArn: string;
  /** Thing and thing group ARNs, as given. */
  targets: string[];
  /** The job document, parsed. */
  document: unknown;
  description?: string;
  targetSelection: 'SNAPSHOT' | 'CONTINUOUS';
  status: IotJobStatus;
  createdAt: Date;
}

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
 * A topic rule destination's status (API_TopicRuleDestination, https://docs.aws.amazon.com/iot/latest/apireference/API_TopicRuleDestination.html):
 * IN_PROGRESS (created, not confirmed), ENABLED (confirmed, traffic allowed), DISABLED (confirmed, no traffic), ERROR
 * (the confirmation timed out), DELETING.
 */
export type IotTopicRuleDestinationStatus = 'IN_PROGRESS' | 'ENABLED' | 'DISABLED' | 'ERROR' | 'DELETING';
const DESTINATION_STATUSES: IotTopicRuleDestinationStatus[] = ['IN_PROGRESS', 'ENABLED', 'DISABLED', 'ERROR', 'DELETING'];

/**
 * The confirmation AWS IoT POSTs to `<confirmationUrl>/?confirmationToken=<token>` with the headers
 * `x-amz-rules-engine-message-type: DestinationConfirmation` and `x-amz-rules-engine-destination-arn` ("Managing HTTP
 * topic rule destinations", https://docs.aws.amazon.com/iot/latest/developerguide/rule-destination-http-managing.html).
 */
export interface IotDestinationConfirmation {
  arn: string;
  confirmationToken: string;
  enableUrl: string;
  messageType: 'DestinationConfirmation';
}

export interface IotTopicRuleDestinationView {
  arn: string;
  status: IotTopicRuleDestinationStatus;
  statusReason?: string;
  confirmationUrl: string;
  createdAt: Date;
  lastUpdatedAt: Date;
  /** The latest confirmation message AWS would have sent (a new one after UpdateTopicRuleDestination IN_PROGRESS). */
  confirmation: IotDestinationConfirmation;
}

interface DestinationRecord {
  arn: string;
  status: IotTopicRuleDestinationStatus;
  statusReason?: string;
  confirmationUrl: string;
  token: string;
  created: number;
  lastUpdated: number;
}

export type IotDeviceConnectResult =
  | { connected: true }
  | { connected: false; reason: string; event?: IotCertificateRegisteredEvent; topic?: string };

interface CaRecord {
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

interface CertificateRecord {
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

interface ThingRecord {
  name: string;
  arn: string;
  id: string;
  thingTypeName?: string;
  attributes: Record<string, string>;
  version: number;
}

interface ThingTypeRecord {
  name: string;
  arn: string;
  id: string;
  description?: string;
  searchableAttributes: string[];
  deprecated: boolean;
  deprecationDate?: number;
  created: number;
}

interface ThingGroupRecord {
  name: string;
  arn: string;
  id: string;
  description?: string;
  attributes: Record<string, string>;
  parentGroupName?: string;
  version: number;
  created: number;
}

interface JobRecord {
  id: string;
  arn: string;
  targets: string[];
  document: string;
  description?: string;
  targetSelection: 'SNAPSHOT' | 'CONTINUOUS';
  status: IotJobStatus;
  created: number;
  lastUpdated: number;
  completed?: number;
}

interface PolicyVersionRecord {
  id: string;
  document: string;
  created: number;
  generationId: string;
}

interface PolicyRecord {
  name: string;
  arn: string;
  /** Kept versions by id, in creation order. */
  versions: Map<string, PolicyVersionRecord>;
  defaultVersionId: string;
  /** Version ids are never reused, even after a version is deleted. */
  nextVersionId: number;
  created: number;
  lastModified: number;
  generationId: string;
}

interface Request {
  params: string[];
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

const CERTIFICATE_STATUSES: IotCertificateStatus[] = ['ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_TRANSFER', 'REGISTER_INACTIVE', 'PENDING_ACTIVATION'];

/** Method, raw path pattern (labels are percent-encoded by the SDK, so `[^/]+` is one label) and operation. */
const ROUTES: [string, RegExp, string][] = [
  ['GET', /^\/registrationcode$/, 'GetRegistrationCode'],
  ['POST', /^\/cacertificate$/, 'RegisterCACertificate'],
  ['PUT', /^\/cacertificate\/([^/]+)$/, 'UpdateCACertificate'],
  ['GET', /^\/cacertificate\/([^/]+)$/, 'DescribeCACertificate'],
  ['DELETE', /^\/cacertificate\/([^/]+)$/, 'DeleteCACertificate'],
  ['POST', /^\/certificate\/register$/, 'RegisterCertificate'],
  ['POST', /^\/certificate\/register-no-ca$/, 'RegisterCertificateWithoutCA'],
  ['PUT', /^\/certificates\/([^/]+)$/, 'UpdateCertificate'],
  ['GET', /^\/certificates\/([^/]+)$/, 'DescribeCertificate'],
  ['GET', /^\/certificates-by-ca\/([^/]+)$/, 'ListCertificatesByCA'],
  ['POST', /^\/things\/([^/]+)$/, 'CreateThing'],
  ['GET', /^\/things\/([^/]+)$/, 'DescribeThing'],
  ['PUT', /^\/things\/([^/]+)\/principals$/, 'AttachThingPrincipal'],
  ['DELETE', /^\/things\/([^/]+)\/principals$/, 'DetachThingPrincipal'],
  ['GET', /^\/things\/([^/]+)\/principals$/, 'ListThingPrincipals'],
  ['GET', /^\/things\/([^/]+)\/thing-groups$/, 'ListThingGroupsForThing'],
  ['POST', /^\/thing-types\/([^/]+)$/, 'CreateThingType'],
  ['GET', /^\/thing-types\/([^/]+)$/, 'DescribeThingType'],
  ['POST', /^\/thing-types\/([^/]+)\/deprecate$/, 'DeprecateThingType'],
  // A fixed path under /thing-groups (not a group named addThingToThingGroup: that one is the PUT).
  ['PUT', /^\/thing-groups\/addThingToThingGroup$/, 'AddThingToThingGroup'],
  ['POST', /^\/thing-groups\/([^/]+)$/, 'CreateThingGroup'],
  ['GET', /^\/thing-groups\/([^/]+)$/, 'DescribeThingGroup'],
  ['PUT', /^\/target-policies\/([^/]+)$/, 'AttachPolicy'],
  ['POST', /^\/target-policies\/([^/]+)$/, 'DetachPolicy'],
  ['POST', /^\/attached-policies\/([^/]+)$/, 'ListAttachedPolicies'],
  // A greedy label ({confirmationToken+}): the SDK keeps the slashes and encodes each segment.
  ['GET', /^\/confirmdestination\/(.+)$/, 'ConfirmTopicRuleDestination'],
  ['POST', /^\/destinations$/, 'CreateTopicRuleDestination'],
  ['GET', /^\/destinations$/, 'ListTopicRuleDestinations'],
  ['PATCH', /^\/destinations$/, 'UpdateTopicRuleDestination'],
  // A greedy label ({arn+}): the ARN keeps its slashes.
  ['GET', /^\/destinations\/(.+)$/, 'GetTopicRuleDestination'],
  ['POST', /^\/policies\/([^/]+)$/, 'CreatePolicy'],
  ['GET', /^\/policies\/([^/]+)$/, 'GetPolicy'],
  ['POST', /^\/policies\/([^/]+)\/version$/, 'CreatePolicyVersion'],
  ['GET', /^\/policies\/([^/]+)\/version$/, 'ListPolicyVersions'],
  ['GET', /^\/policies\/([^/]+)\/version\/([^/]+)$/, 'GetPolicyVersion'],
  ['DELETE', /^\/policies\/([^/]+)\/version\/([^/]+)$/, 'DeletePolicyVersion'],
  ['PATCH', /^\/policies\/([^/]+)\/version\/([^/]+)$/, 'SetDefaultPolicyVersion'],
  ['GET', /^\/jobs$/, 'ListJobs'],
  ['PUT', /^\/jobs\/([^/]+)$/, 'CreateJob'],
  ['GET', /^\/jobs\/([^/]+)$/, 'DescribeJob'],
  ['GET', /^\/jobs\/([^/]+)\/job-document$/, 'GetJobDocument'],
];

const JOB_STATUSES: IotJobStatus[] = ['IN_PROGRESS', 'CANCELED', 'COMPLETED', 'DELETION_IN_PROGRESS', 'SCHEDULED'];
/** AWS IoT Jobs limits: a job document of at most 32 KB, at most 100 targets per job. */
const MAX_JOB_DOCUMENT_BYTES = 32_768;
const MAX_JOB_TARGETS = 100;
/** AWS IoT policy limits: a document of at most 2048 characters not counting whitespace, at most five versions. */
const MAX_POLICY_DOCUMENT_CHARACTERS = 2048;
const MAX_POLICY_VERSIONS = 5;

/** Operations whose AWS model has no ThrottlingException: the rate knobs leave them alone. */
const NEVER_THROTTLED = new Set([
  'ConfirmTopicRuleDestination',
  'CreateTopicRuleDestination',
  'GetTopicRuleDestination',
  'ListTopicRuleDestinations',
  'UpdateTopicRuleDestination',
]);

/** DER of the signature AlgorithmIdentifier OIDs AWS IoT accepts on device certificates (SHA-2 with RSA, RSA-PSS or ECDSA). */
const ACCEPTED_SIGNATURE_OIDS: Record<string, string> = {
  '06092a864886f70d01010b': 'sha256WithRSAEncryption',
  '06092a864886f70d01010c': 'sha384WithRSAEncryption',
  '06092a864886f70d01010d': 'sha512WithRSAEncryption',
  '06092a864886f70d01010a': 'RSASSA-PSS',
  '06082a8648ce3d040302': 'ecdsa-with-SHA256',
  '06082a8648ce3d040303': 'ecdsa-with-SHA384',
  '06082a8648ce3d040304': 'ecdsa-with-SHA512',
};

const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

class IotError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

// HTTP statuses from the AWS IoT model inside @aws-sdk/client-iot (httpError traits), not the usual guesses:
// ThrottlingException is 400, CertificateStateException 406, LimitExceededException 410.
const invalid = (message: string) => new IotError('InvalidRequestException', message, 400);
const notFound = (message: string) => new IotError('ResourceNotFoundException', message, 404);
const alreadyExists = (message: string, resourceId: string, resourceArn: string) =>
  new IotError('ResourceAlreadyExistsException', message, 409, { resourceId, resourceArn });
const certificateState = (message: string) => new IotError('CertificateStateException', message, 406);
const certificateValidation = (message: string) => new IotError('CertificateValidationException', message, 400);
const limitExceeded = (message: string) => new IotError('LimitExceededException', message, 410);
const conflicting = (message: string) => new IotError('ConflictingResourceUpdateException', message, 409);

/** A token bucket: `rate` tokens a second, at most `capacity` stored. */
class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private rate: number,
    private capacity: number,
  ) {
    this.tokens = capacity;
  }

  reconfigure(rate: number, capacity: number): void {
    this.refill();
    const wasUnlimited = this.rate <= 0;
    this.rate = rate;
    this.capacity = capacity;
    this.tokens = wasUnlimited ? capacity : Math.min(this.tokens, capacity);
  }

  take(): boolean {
    if (this.rate <= 0) return true;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  level(): number | null {
    if (this.rate <= 0) return null;
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}

export class IotStandIn {
  readonly region = 'us-east-1';
  readonly account = '111122223333';
  /** The account's registration code (GetRegistrationCode): a DEFAULT-mode verification certificate carries it as CN. */
  readonly registrationCode = randomBytes(32).toString('hex');
  /** Test hook: when set, GetRegistrationCode answers this instead, so verification certificates come out wrong. */
  staleRegistrationCode?: string;
  knobs: IotStandInKnobs;
  /** Calls by operation, including refused ones (for tests and benchmarks). */
  readonly calls = new Map<string, number>();
  throttled = 0;
  /** Answers lost after the operation took effect (see the loseResponses knob), by operation. */
  readonly lostResponses = new Map<string, number>();
  /** Calls refused with ConflictingResourceUpdateException by the conflictingUpdates knob, by operation. */
  readonly conflicts = new Map<string, number>();
  readonly throttledByOperation = new Map<string, number>();
  /** Certificate registration events published so far (JITR), oldest first. */
  readonly events: { topic: string; event: IotCertificateRegisteredEvent }[] = [];
  /** Test hook: told of every certificate registration event as it is published. */
  onEvent?: (topic: string, event: IotCertificateRegisteredEvent) => void;
  private readonly cas = new Map<string, CaRecord>();
  private readonly certificates = new Map<string, CertificateRecord>();
  private readonly thingRecords = new Map<string, ThingRecord>();
  private readonly thingTypes = new Map<string, ThingTypeRecord>();
  private readonly thingGroups = new Map<string, ThingGroupRecord>();
  /** thing name → names of its thing groups, in the order it was added. */
  private readonly thingGroupMembership = new Map<string, Set<string>>();
  private readonly policies = new Map<string, PolicyRecord>();
  /** thing name → principal ARN → thingPrincipalType. */
  private readonly thingPrincipalMap = new Map<string, Map<string, string>>();
  /** target (certificate ARN) → policy names, in attachment order. */
  private readonly targetPolicies = new Map<string, Set<string>>();
  private readonly confirmations: string[] = [];
  private readonly destinations = new Map<string, DestinationRecord>();
  private readonly jobRecords = new Map<string, JobRecord>();
  /** CA certificate ids some other account holds in DEFAULT mode (see claimCaInAnotherAccount). */
  private readonly foreignDefaultCas = new Set<string>();
  private server?: http.Server;
  private readonly bucket: TokenBucket;
  private readonly operationBuckets = new Map<string, TokenBucket>();

  constructor(knobs: Partial<IotStandInKnobs> = {}) {
    this.knobs = { latencyMs: 0, tps: 0, throttleProbability: 0, failureMode: 'none', ...knobs };
    this.bucket = new TokenBucket(this.knobs.tps, this.capacity());
  }

  private capacity(): number {
    return this.knobs.burst ?? this.knobs.tps;
  }

  get endpoint(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  configure(knobs: Partial<IotStandInKnobs>): void {
    this.knobs = { ...this.knobs, ...knobs };
    this.bucket.reconfigure(this.knobs.tps, this.capacity());
    for (const [operation, bucket] of this.operationBuckets) {
      const rate = this.knobs.operationTps?.[operation] ?? 0;
      bucket.reconfigure(rate, rate);
    }
  }

  // ---- inspection and test hooks ------------------------------------------------------------------------------

  certificateArn(certificateId: string): string {
    return `arn:aws:iot:${this.region}:${this.account}:cert/${certificateId}`;
  }

  caCertificateArn(certificateId: string): string {
    return `arn:aws:iot:${this.region}:${this.account}:cacert/${certificateId}`;
  }

  /** A registered device certificate by id, with its status; undefined when AWS IoT would not know it. */
  certificate(certificateId: string): IotCertificateView | undefined {
    const record = this.certificates.get(certificateId.toLowerCase());
    return record && this.certificateView(record);
  }

  certificateList(): IotCertificateView[] {
    return [...this.certificates.values()].map((record) => this.certificateView(record));
  }

  caCertificate(certificateId: string): IotCaCertificateView | undefined {
    const record = this.cas.get(certificateId.toLowerCase());
    return record && this.caView(record);
  }

  caCertificateList(): IotCaCertificateView[] {
    return [...this.cas.values()].map((record) => this.caView(record));
  }

  thing(thingName: string): IotThingView | undefined {
    const record = this.thingRecords.get(thingName);
    return record && this.thingView(record);
  }

  thingList(): IotThingView[] {
    return [...this.thingRecords.values()].map((record) => this.thingView(record));
  }

  thingType(thingTypeName: string): IotThingTypeView | undefined {
    const record = this.thingTypes.get(thingTypeName);
    return record && this.thingTypeView(record);
  }

  thingGroup(thingGroupName: string): IotThingGroupView | undefined {
    const record = this.thingGroups.get(thingGroupName);
    return record && this.thingGroupView(record);
  }

  /** Names of the thing groups a thing is in, in the order it was added. */
  thingGroupsOf(thingName: string): string[] {
    return [...(this.thingGroupMembership.get(thingName) ?? [])];
  }

  /** Test hook: a thing type made in the console, say (CreateThingType does the same over the API). */
  createThingType(thingTypeName: string, options: { description?: string; searchableAttributes?: string[] } = {}): IotThingTypeView {
    this.putThingType(thingTypeNameParam(thingTypeName), options.description, options.searchableAttributes ?? []);
    return this.thingType(thingTypeName)!;
  }

  /** Test hook: deprecate a thing type (or undo it): CreateThing then refuses it for new things. */
  deprecateThingType(thingTypeName: string, deprecated = true): void {
    const record = this.thingTypes.get(thingTypeName);
    if (!record) throw new Error(`no thing type ${thingTypeName}`);
    record.deprecated = deprecated;
    record.deprecationDate = deprecated ? Date.now() : undefined;
  }

  /** Test hook: a (static) thing group made in the console, say (CreateThingGroup does the same over the API). */
  createThingGroup(thingGroupName: string, options: { description?: string; attributes?: Record<string, string>; parentGroupName?: string } = {}): IotThingGroupView {
    this.putThingGroup(thingGroupNameParam(thingGroupName), options.description, options.attributes ?? {}, options.parentGroupName);
    return this.thingGroup(thingGroupName)!;
  }

  /** Principal ARNs attached to a thing. */
  principalsOf(thingName: string): string[] {
    return [...(this.thingPrincipalMap.get(thingName)?.keys() ?? [])];
  }

  /** Thing names a principal (certificate ARN) is attached to. */
  thingsOf(principal: string): string[] {
    return [...this.thingPrincipalMap.entries()].filter(([, principals]) => principals.has(principal)).map(([name]) => name);
  }

  /** Policy names attached to a target (certificate ARN). */
  policiesAttachedTo(target: string): string[] {
    return [...(this.targetPolicies.get(target) ?? [])];
  }

  /** The default version's document of a policy, as sent. */
  policyDocument(policyName: string): string | undefined {
    const record = this.policies.get(policyName);
    return record && this.defaultVersion(record).document;
  }

  /** A policy with its default version's document and every kept version; undefined when AWS IoT would not know it. */
  policy(policyName: string): IotPolicyView | undefined {
    const record = this.policies.get(policyName);
    return record && this.policyView(record);
  }

  policyList(): IotPolicyView[] {
    return [...this.policies.values()].map((record) => this.policyView(record));
  }

  /** Jobs created so far, oldest first, with their targets and parsed documents. */
  jobs(): IotJobView[] {
    return [...this.jobRecords.values()].map((record) => this.jobView(record));
  }

  job(jobId: string): IotJobView | undefined {
    const record = this.jobRecords.get(jobId);
    return record && this.jobView(record);
  }

  /** Test hook: move a job to another status (an operator cancelling or deleting it, or the job completing). */
  setJobStatus(jobId: string, status: IotJobStatus): void {
    if (!JOB_STATUSES.includes(status)) throw new Error(`unknown job status ${status}`);
    const record = this.jobRecords.get(jobId);
    if (!record) throw new Error(`no job ${jobId}`);
    record.status = status;
    record.lastUpdated = Date.now();
    record.completed = status === 'COMPLETED' || status === 'CANCELED' ? record.lastUpdated : undefined;
  }

  /** Topic rule destination confirmation tokens confirmed so far, in order. */
  confirmedTokens(): string[] {
    return [...this.confirmations];
  }

  /**
   * Test hook: a topic rule destination as CreateTopicRuleDestination makes it (IN_PROGRESS by default), with a given
   * ARN (so that a service can be configured with it before it exists) and token if wanted. An existing one with that
   * ARN is replaced. Returns the confirmation message AWS would POST to its confirmation URL.
   */
  seedTopicRuleDestination(
    options: { arn?: string; confirmationUrl?: string; status?: IotTopicRuleDestinationStatus; confirmationToken?: string } = {},
  ): IotDestinationConfirmation {
    const status = options.status ?? 'IN_PROGRESS';
    if (!DESTINATION_STATUSES.includes(status)) throw invalid(`status must be one of ${DESTINATION_STATUSES.join(', ')}`);
    const arn = options.arn ?? this.destinationArn(randomUUID());
    if (!/^arn:aws:iot:[a-z0-9-]+:\d{12}:ruledestination\/http\/[\w-]+$/.test(arn)) throw invalid(`${arn} is not a topic rule destination ARN`);
    const token = options.confirmationToken ?? newConfirmationToken();
    if (token.length === 0 || token.length > 2048) throw invalid('confirmationToken must be 1 to 2048 characters');
    const now = Date.now();
    const record: DestinationRecord = { arn, status, confirmationUrl: options.confirmationUrl ?? 'https://fleet-pki.example/v1/iot/events', token, created: now, lastUpdated: now };
    this.destinations.set(arn, record);
    return this.confirmationMessage(record);
  }

  topicRuleDestination(arn: string): IotTopicRuleDestinationView | undefined {
    const record = this.destinations.get(arn);
    return record && this.destinationView(record);
  }

  topicRuleDestinations(): IotTopicRuleDestinationView[] {
    return [...this.destinations.values()].map((record) => this.destinationView(record));
  }

  /** Test hook: move a destination behind the service's back (the confirmation timing out: ERROR; an operator disabling it). */
  setTopicRuleDestinationStatus(arn: string, status: IotTopicRuleDestinationStatus, statusReason?: string): void {
    if (!DESTINATION_STATUSES.includes(status)) throw new Error(`unknown destination status ${status}`);
    const record = this.destinations.get(arn);
    if (!record) throw new Error(`no topic rule destination ${arn}`);
    record.status = status;
    record.statusReason = statusReason;
    record.lastUpdated = Date.now();
  }

  /** Test hook: change a certificate's status behind the service's back (an operator in the console, say). */
  setCertificateStatus(certificateId: string, status: IotCertificateStatus): void {
    if (!CERTIFICATE_STATUSES.includes(status)) throw new Error(`unknown certificate status ${status}`);
    const record = this.certificates.get(certificateId.toLowerCase());
    if (!record) throw new Error(`no certificate ${certificateId}`);
    record.status = status;
    this.touch(record);
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
  async registerForeignCertificate(
    caCertificateId: string,
    options: { certificatePem?: string; status?: IotCertificateStatus; commonName?: string; anyIssuer?: boolean; withoutCa?: boolean } = {},
  ): Promise<IotCertificateView> {
    const ca = this.cas.get(caCertificateId.toLowerCase());
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
    if (this.certificates.has(id)) throw alreadyExists('The certificate is already registered', id, this.certificateArn(id));
    const now = Date.now();
    this.certificates.set(id, {
      id,
      arn: this.certificateArn(id),
      pem: x509.toString(),
      x509,
      status,
      caCertificateId: options.withoutCa ? undefined : ca.id,
      mode: options.withoutCa ? 'SNI_ONLY' : ca.mode,
      created: now,
      lastModified: now,
      customerVersion: 1,
      generationId: randomUUID(),
      registeredBy: 'Foreign',
    });
    return this.certificate(id)!;
  }

  /** Test hook: set a CA's status or auto-registration behind the service's back. */
  setCaCertificateStatus(certificateId: string, status: 'ACTIVE' | 'INACTIVE', autoRegistration?: 'ENABLE' | 'DISABLE'): void {
    const record = this.cas.get(certificateId.toLowerCase());
    if (!record) throw new Error(`no CA certificate ${certificateId}`);
    record.status = status;
    if (autoRegistration) record.autoRegistration = autoRegistration;
    this.touch(record);
  }

  /**
   * Test hook: another AWS account in the region registers this CA in DEFAULT mode, so this account can then
   * register it only in SNI_ONLY mode (a CA can be registered in DEFAULT mode by one account per region).
   */
  claimCaInAnotherAccount(caCertificatePem: string): void {
    this.foreignDefaultCas.add(new X509Certificate(caCertificatePem).fingerprint256.replace(/:/g, '').toLowerCase());
  }

  /**
   * Test hook: a device's first TLS connection with this certificate (and the chain it presents: the issuing CA,
   * then its parents). Plays Just-in-Time Registration: an unknown certificate issued by a registered, ACTIVE CA
   * with auto-registration on is registered PENDING_ACTIVATION, the connection is dropped and the registration
   * event is published (and published again each time a PENDING_ACTIVATION certificate connects).
   */
  connectDevice(certificatePem: string, chainPem = ''): IotDeviceConnectResult {
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
    const known = this.certificates.get(id);
    const now = Date.now();
    if (known) {
      if (known.status === 'ACTIVE') {
        if (!validAt(x509, now)) return { connected: false, reason: 'the certificate is expired or not yet valid' };
        return { connected: true };
      }
      if (known.status === 'PENDING_ACTIVATION' && known.caCertificateId) {
        return { connected: false, reason: 'the certificate is PENDING_ACTIVATION', ...this.publish(known, now) };
      }
      return { connected: false, reason: `the certificate is ${known.status}` };
    }
    if (chain.length > 0 && !issuedBy(x509, chain[0])) {
      return { connected: false, reason: 'the chain does not start with the certificate of the issuing CA' };
    }
    const candidates = this.issuingCas(x509);
    const ca = candidates.find((c) => chain.some((member) => idOf(member) === c.id)) ?? candidates.find((c) => c.status === 'ACTIVE') ?? candidates[0];
    if (!ca) return { connected: false, reason: 'unknown certificate: not registered and not issued by a registered CA' };
    if (ca.status !== 'ACTIVE') return { connected: false, reason: `the issuing CA ${ca.id} is INACTIVE` };
    if (ca.autoRegistration !== 'ENABLE') return { connected: false, reason: `the issuing CA ${ca.id} does not allow auto-registration` };
    if (!validAt(x509, now)) return { connected: false, reason: 'the certificate is expired or not yet valid' };
    const problem = deviceCertificateProblem(x509);
    if (problem) return { connected: false, reason: problem };
    const record: CertificateRecord = {
      id,
      arn: this.certificateArn(id),
      pem: x509.toString(),
      x509,
      status: 'PENDING_ACTIVATION',
      caCertificateId: ca.id,
      mode: ca.mode,
      created: now,
      lastModified: now,
      customerVersion: 1,
      generationId: randomUUID(),
      registeredBy: 'JITR',
    };
    this.certificates.set(id, record);
    return { connected: false, reason: 'registered PENDING_ACTIVATION by just-in-time registration; the device must reconnect', ...this.publish(record, now) };
  }

  private publish(record: CertificateRecord, now: number): { event: IotCertificateRegisteredEvent; topic: string } {
    const event: IotCertificateRegisteredEvent = {
      certificateId: record.id,
      caCertificateId: record.caCertificateId!,
      timestamp: now,
      certificateStatus: 'PENDING_ACTIVATION',
      awsAccountId: this.account,
      certificateRegistrationTimestamp: String(record.created),
    };
    const topic = `$aws/events/certificates/registered/${record.caCertificateId}`;
    this.events.push({ topic, event });
    this.onEvent?.(topic, event);
    return { event, topic };
  }

  // ---- HTTP ---------------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://localhost');

    if (url.pathname.startsWith('/_standin/')) {
      this.handleHook(req.method ?? 'GET', url.pathname, raw, res);
      return;
    }

    let operation = '';
    let params: string[] = [];
    for (const [method, pattern, name] of ROUTES) {
      const match = req.method === method ? pattern.exec(url.pathname) : null;
      if (match) {
        operation = name;
        params = match.slice(1);
        break;
      }
    }
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);

    if (this.knobs.latencyMs > 0) await new Promise((r) => setTimeout(r, this.knobs.latencyMs));
    if (this.knobs.failureMode === 'drop') {
      req.socket.destroy();
      return;
    }
    try {
      if (this.knobs.failureMode === 'http503') throw new IotError('ServiceUnavailableException', 'Service Unavailable', 503);
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
        throw new IotError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403);
      }
      if (!operation) throw new IotError('UnknownOperationException', `No operation at ${req.method} ${url.pathname}`, 404);
      this.throttle(operation);
      this.conflict(operation);
      let decoded: string[];
      try {
        decoded = params.map((p) => p.split('/').map(decodeURIComponent).join('/'));
      } catch {
        throw invalid('malformed percent-encoding in the path');
      }
      let body: Record<string, unknown> = {};
      if (raw.length > 0) {
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw invalid('Content-Type must be application/json');
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          throw invalid('the request body is not JSON');
        }
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the request body must be a JSON object');
      }
      const result = this.dispatch(operation, { params: decoded, query: url.searchParams, headers: req.headers, body });
      if (this.loseResponse(operation)) {
        if (this.knobs.lostResponseAs === 'http500') throw new IotError('InternalFailureException', 'An unexpected error has occurred.', 500);
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'x-amzn-RequestId': randomUUID() }).end(JSON.stringify(result));
    } catch (err) {
      const error = err instanceof IotError ? err : new IotError('InternalFailureException', String(err), 500);
      res
        .writeHead(error.status, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': error.type, 'x-amzn-RequestId': randomUUID() })
        .end(JSON.stringify({ message: error.message, ...error.extra }));
    }
  }

  private handleHook(method: string, path: string, raw: string, res: http.ServerResponse): void {
    const reply = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw || '{}') as Record<string, unknown>;
    } catch {
      reply(400, { message: 'the body is not JSON' });
      return;
    }
    const statusHook = /^\/_standin\/certificates\/([0-9a-fA-F]{64})\/status$/.exec(path);
    const foreignHook = /^\/_standin\/cacertificates\/([0-9a-fA-F]{64})\/foreign-certificates$/.exec(path);
    const policyHook = /^\/_standin\/policies\/([^/]+)$/.exec(path);
    const failed = (err: unknown) => reply(err instanceof IotError ? err.status : 500, { message: err instanceof Error ? err.message : String(err) });
    try {
      if (path === '/_standin/stats' && method === 'GET') {
        reply(200, {
          throttled: this.throttled,
          throttledByOperation: Object.fromEntries(this.throttledByOperation),
          lostResponses: Object.fromEntries(this.lostResponses),
          conflicts: Object.fromEntries(this.conflicts),
          calls: Object.fromEntries(this.calls),
          tokens: this.bucket.level(),
        });
      } else if (path === '/_standin/config' && method === 'POST') {
        this.configure(body as Partial<IotStandInKnobs>);
        reply(200, this.knobs);
      } else if (path === '/_standin/devices/connect' && method === 'POST') {
        if (typeof body.certificatePem !== 'string') throw invalid('certificatePem is required');
        if (body.chainPem !== undefined && typeof body.chainPem !== 'string') throw invalid('chainPem must be a string');
        reply(200, this.connectDevice(body.certificatePem, body.chainPem as string | undefined));
      } else if (statusHook && method === 'POST') {
        const status = body.status as IotCertificateStatus;
        if (!CERTIFICATE_STATUSES.includes(status)) throw invalid(`status must be one of ${CERTIFICATE_STATUSES.join(', ')}`);
        if (!this.certificates.has(statusHook[1].toLowerCase())) throw notFound(`no certificate ${statusHook[1]}`);
        this.setCertificateStatus(statusHook[1], status);
        reply(200, this.certificate(statusHook[1]));
      } else if (path === '/_standin/confirmations' && method === 'GET') {
        reply(200, { tokens: this.confirmedTokens() });
      } else if (path === '/_standin/destinations' && method === 'GET') {
        reply(200, { destinations: this.topicRuleDestinations() });
      } else if (path === '/_standin/destinations' && method === 'POST') {
        for (const field of ['arn', 'confirmationUrl', 'status', 'confirmationToken']) {
          if (body[field] !== undefined && typeof body[field] !== 'string') throw invalid(`${field} must be a string`);
        }
        reply(200, this.seedTopicRuleDestination(body as { arn?: string; confirmationUrl?: string; status?: IotTopicRuleDestinationStatus; confirmationToken?: string }));
      } else if (path === '/_standin/events' && method === 'GET') {
        reply(200, { events: this.events });
      } else if (path === '/_standin/jobs' && method === 'GET') {
        reply(200, { jobs: this.jobs() });
      } else if (foreignHook && method === 'POST') {
        for (const field of ['certificatePem', 'status', 'commonName']) {
          if (body[field] !== undefined && typeof body[field] !== 'string') throw invalid(`${field} must be a string`);
        }
        const options = body as { certificatePem?: string; status?: IotCertificateStatus; commonName?: string };
        this.registerForeignCertificate(foreignHook[1], options).then((view) => reply(200, view), failed);
      } else if (policyHook && method === 'GET') {
        const view = this.policy(decodeURIComponent(policyHook[1]));
        if (!view) throw notFound(`no policy ${policyHook[1]}`);
        reply(200, view);
      } else {
        reply(404, { message: `no stand-in hook at ${method} ${path}` });
      }
    } catch (err) {
      failed(err);
    }
  }

  /** Whether this (successful) answer is to be lost, per the loseResponses knob; counts it down. */
  private loseResponse(operation: string): boolean {
    const left = this.knobs.loseResponses?.[operation] ?? 0;
    if (left <= 0) return false;
    this.knobs.loseResponses = { ...this.knobs.loseResponses, [operation]: left - 1 };
    this.lostResponses.set(operation, (this.lostResponses.get(operation) ?? 0) + 1);
    return true;
  }

  /** Refuses the call per the conflictingUpdates knob (before it takes effect); counts it down. */
  private conflict(operation: string): void {
    const left = this.knobs.conflictingUpdates?.[operation] ?? 0;
    if (left <= 0) return;
    this.knobs.conflictingUpdates = { ...this.knobs.conflictingUpdates, [operation]: left - 1 };
    this.conflicts.set(operation, (this.conflicts.get(operation) ?? 0) + 1);
    throw conflicting('A conflicting resource update exception. Two pending updates cause a conflict.');
  }

  private throttle(operation: string): void {
    if (NEVER_THROTTLED.has(operation)) return;
    const refuse = () => {
      this.throttled++;
      this.throttledByOperation.set(operation, (this.throttledByOperation.get(operation) ?? 0) + 1);
      return new IotError('ThrottlingException', 'Rate exceeded', 400);
    };
    if (this.knobs.throttleProbability > 0 && Math.random() < this.knobs.throttleProbability) throw refuse();
    const rate = this.knobs.operationTps?.[operation] ?? 0;
    let operationBucket = this.operationBuckets.get(operation);
    if (!operationBucket && rate > 0) {
      operationBucket = new TokenBucket(rate, rate);
      this.operationBuckets.set(operation, operationBucket);
    }
    if (operationBucket && !operationBucket.take()) throw refuse();
    if (!this.bucket.take()) throw refuse();
  }

  private dispatch(operation: string, req: Request): unknown {
    switch (operation) {
      case 'GetRegistrationCode':
        return { registrationCode: this.staleRegistrationCode ?? this.registrationCode };
      case 'RegisterCACertificate':
        return this.registerCaCertificate(req);
      case 'UpdateCACertificate':
        return this.updateCaCertificate(req);
      case 'DescribeCACertificate':
        return this.describeCaCertificate(req);
      case 'DeleteCACertificate':
        return this.deleteCaCertificate(req);
      case 'RegisterCertificate':
        return this.registerCertificate(req, true);
      case 'RegisterCertificateWithoutCA':
        return this.registerCertificate(req, false);
      case 'UpdateCertificate':
        return this.updateCertificate(req);
      case 'DescribeCertificate':
        return this.describeCertificate(req);
      case 'ListCertificatesByCA':
        return this.listCertificatesByCa(req);
      case 'CreateThing':
        return this.createThing(req);
      case 'DescribeThing':
        return this.describeThing(req);
      case 'AttachThingPrincipal':
        return this.attachThingPrincipal(req);
      case 'DetachThingPrincipal':
        return this.detachThingPrincipal(req);
      case 'ListThingPrincipals':
        return this.listThingPrincipals(req);
      case 'ListThingGroupsForThing':
        return this.listThingGroupsForThing(req);
      case 'CreateThingType':
        return this.createThingTypeOperation(req);
      case 'DescribeThingType':
        return this.describeThingType(req);
      case 'DeprecateThingType':
        return this.deprecateThingTypeOperation(req);
      case 'CreateThingGroup':
        return this.createThingGroupOperation(req);
      case 'DescribeThingGroup':
        return this.describeThingGroup(req);
      case 'AddThingToThingGroup':
        return this.addThingToThingGroup(req);
      case 'AttachPolicy':
        return this.attachPolicy(req);
      case 'DetachPolicy':
        return this.detachPolicy(req);
      case 'ListAttachedPolicies':
        return this.listAttachedPolicies(req);
      case 'ConfirmTopicRuleDestination':
        return this.confirmTopicRuleDestination(req);
      case 'CreateTopicRuleDestination':
        return this.createTopicRuleDestination(req);
      case 'GetTopicRuleDestination':
        return this.getTopicRuleDestination(req);
      case 'ListTopicRuleDestinations':
        return this.listTopicRuleDestinations(req);
      case 'UpdateTopicRuleDestination':
        return this.updateTopicRuleDestination(req);
      case 'CreatePolicy':
        return this.createPolicy(req);
      case 'GetPolicy':
        return this.getPolicy(req);
      case 'CreatePolicyVersion':
        return this.createPolicyVersion(req);
      case 'ListPolicyVersions':
        return this.listPolicyVersions(req);
      case 'GetPolicyVersion':
        return this.getPolicyVersion(req);
      case 'DeletePolicyVersion':
        return this.deletePolicyVersion(req);
      case 'SetDefaultPolicyVersion':
        return this.setDefaultPolicyVersion(req);
      case 'CreateJob':
        return this.createJob(req);
      case 'DescribeJob':
        return this.describeJob(req);
      case 'GetJobDocument':
        return this.getJobDocument(req);
      case 'ListJobs':
        return this.listJobs(req);
      default:
        throw new IotError('UnknownOperationException', `${operation} is not supported by the stand-in`, 404);
    }
  }

  // ---- CA certificates ----------------------------------------------------------------------------------------

  private registerCaCertificate(req: Request): unknown {
    const { body, query } = req;
    const mode = (body.certificateMode ?? 'DEFAULT') as IotCertificateMode;
    if (mode !== 'DEFAULT' && mode !== 'SNI_ONLY') throw invalid(`certificateMode must be DEFAULT or SNI_ONLY, not ${String(mode)}`);
    const setAsActive = booleanQuery(query, 'setAsActive') ?? false;
    const allowAutoRegistration = booleanQuery(query, 'allowAutoRegistration') ?? false;
    const registrationConfig = this.registrationConfig(body.registrationConfig);
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
        throw new IotError('RegistrationCodeValidationException', 'The verification certificate common name does not match the registration code', 400);
      }
      if (!verification.verify(ca.publicKey)) throw certificateValidation('The verification certificate is not signed by the CA certificate key');
    } else if (body.verificationCertificate !== undefined) {
      throw invalid('verificationCertificate must not be given when certificateMode is SNI_ONLY');
    }

    const id = idOf(ca);
    const arn = this.caCertificateArn(id);
    const existing = this.cas.get(id);
    if (existing) {
      // SNI_ONLY registrations may repeat (as they may across accounts); anything involving DEFAULT may not.
      if (existing.mode === 'SNI_ONLY' && mode === 'SNI_ONLY') return { certificateArn: existing.arn, certificateId: existing.id };
      throw alreadyExists('The CA certificate is already registered', id, arn);
    }
    if (mode === 'DEFAULT' && this.foreignDefaultCas.has(id)) {
      throw alreadyExists('The CA certificate is already registered in DEFAULT mode by another account in this region', id, arn);
    }
    if ([...this.cas.values()].filter((other) => other.x509.subject === ca.subject).length >= 10) {
      throw limitExceeded('At most 10 CA certificates with the same subject may be registered per account and region');
    }
    const now = Date.now();
    this.cas.set(id, {
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

  private registrationConfig(value: unknown): IotRegistrationConfig | undefined {
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

  private caRecord(rawId: string): CaRecord {
    const id = certificateIdParam(rawId);
    const record = this.cas.get(id);
    if (!record) throw notFound(`The CA certificate ${rawId} does not exist`);
    return record;
  }

  private updateCaCertificate(req: Request): unknown {
    const record = this.caRecord(req.params[0]);
    const newStatus = req.query.get('newStatus');
    const newAuto = req.query.get('newAutoRegistrationStatus');
    if (newStatus !== null && newStatus !== 'ACTIVE' && newStatus !== 'INACTIVE') throw invalid(`newStatus must be ACTIVE or INACTIVE, not ${newStatus}`);
    if (newAuto !== null && newAuto !== 'ENABLE' && newAuto !== 'DISABLE') throw invalid(`newAutoRegistrationStatus must be ENABLE or DISABLE, not ${newAuto}`);
    const remove = req.body.removeAutoRegistration;
    if (remove !== undefined && typeof remove !== 'boolean') throw invalid('removeAutoRegistration must be a boolean');
    if (remove && req.body.registrationConfig !== undefined) throw invalid('registrationConfig and removeAutoRegistration cannot both be given');
    const registrationConfig = this.registrationConfig(req.body.registrationConfig);
    if (newStatus === 'ACTIVE' && record.mode === 'DEFAULT' && this.foreignDefaultCas.has(record.id)) {
      throw invalid('The CA certificate is registered in DEFAULT mode by another account');
    }
    if (newStatus) record.status = newStatus;
    if (newAuto) record.autoRegistration = newAuto;
    if (registrationConfig) record.registrationConfig = registrationConfig;
    if (remove) record.registrationConfig = undefined;
    this.touch(record);
    return {};
  }

  private describeCaCertificate(req: Request): unknown {
    const record = this.caRecord(req.params[0]);
    return {
      certificateDescription: {
        certificateArn: record.arn,
        certificateId: record.id,
        status: record.status,
        certificatePem: record.pem,
        ownedBy: this.account,
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

  private deleteCaCertificate(req: Request): unknown {
    const record = this.caRecord(req.params[0]);
    if (record.status === 'ACTIVE') throw certificateState('The CA certificate is ACTIVE: set it INACTIVE before deleting it');
    this.cas.delete(record.id);
    return {};
  }

  // ---- device certificates ------------------------------------------------------------------------------------

  /** Registered CAs whose certificate issued this one (name chaining and a signature that verifies). */
  private issuingCas(x509: X509Certificate): CaRecord[] {
    return [...this.cas.values()].filter((ca) => issuedBy(x509, ca.x509));
  }

  private registerCertificate(req: Request, withCa: boolean): unknown {
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
        ca = this.cas.get(idOf(given));
        if (!ca) throw certificateValidation('The CA certificate is not registered');
        if (!issuedBy(certificate, ca.x509)) throw certificateValidation('The certificate is not signed by the given CA certificate');
      } else {
        const candidates = this.issuingCas(certificate);
        if (candidates.length === 0) throw certificateValidation('The certificate is not signed by a registered CA certificate');
        if (candidates.length > 1) {
          throw new IotError(
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
    const arn = this.certificateArn(id);
    if (this.certificates.has(id)) throw alreadyExists('The certificate is already provisioned or registered', id, arn);
    const now = Date.now();
    this.certificates.set(id, {
      id,
      arn,
      pem: certificate.toString(),
      x509: certificate,
      status,
      caCertificateId: ca?.id,
      mode: ca ? ca.mode : 'SNI_ONLY',
      created: now,
      lastModified: now,
      customerVersion: 1,
      generationId: randomUUID(),
      registeredBy: withCa ? 'RegisterCertificate' : 'RegisterCertificateWithoutCA',
    });
    return { certificateArn: arn, certificateId: id };
  }

  private certificateRecord(rawId: string): CertificateRecord {
    const id = certificateIdParam(rawId);
    const record = this.certificates.get(id);
    if (!record) throw notFound(`The certificate ${rawId} does not exist`);
    return record;
  }

  private updateCertificate(req: Request): unknown {
    const record = this.certificateRecord(req.params[0]);
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
    this.touch(record);
    return {};
  }

  private describeCertificate(req: Request): unknown {
    const record = this.certificateRecord(req.params[0]);
    return {
      certificateDescription: {
        certificateArn: record.arn,
        certificateId: record.id,
        caCertificateId: record.caCertificateId,
        status: record.status,
        certificatePem: record.pem,
        ownedBy: this.account,
        creationDate: record.created / 1000,
        lastModifiedDate: record.lastModified / 1000,
        customerVersion: record.customerVersion,
        generationId: record.generationId,
        validity: validity(record.x509),
        certificateMode: record.mode,
      },
    };
  }

  private listCertificatesByCa(req: Request): unknown {
    const caId = certificateIdParam(req.params[0]);
    const ascending = booleanQuery(req.query, 'isAscendingOrder') ?? false;
    const certificates = [...this.certificates.values()]
      .filter((c) => c.caCertificateId === caId)
      .sort((a, b) => (ascending ? a.created - b.created : b.created - a.created))
      .map((c) => ({ certificateArn: c.arn, certificateId: c.id, status: c.status, certificateMode: c.mode, creationDate: c.created / 1000 }));
    const { items, next } = page(certificates, pageSizeQuery(req.query, 'pageSize'), req.query.get('marker'));
    return { certificates: items, nextMarker: next };
  }

  // ---- things and principals ----------------------------------------------------------------------------------

  private createThing(req: Request): unknown {
    const name = thingNameParam(req.params[0]);
    const { body } = req;
    let thingTypeName: string | undefined;
    if (body.thingTypeName !== undefined) {
      thingTypeName = thingTypeNameParam(body.thingTypeName);
      const type = this.thingTypes.get(thingTypeName);
      if (!type) throw notFound(`Thing type ${thingTypeName} does not exist`);
      if (type.deprecated) throw invalid(`Thing type ${thingTypeName} is deprecated: new things cannot be associated with it`);
    }
    if (body.billingGroupName !== undefined) throw notFound(`The billing group ${String(body.billingGroupName)} does not exist`);
    const attributes = attributeMap(body.attributePayload, 'attributePayload');
    // Thing limits: 3 attributes without a thing type, 50 with one.
    const maxAttributes = thingTypeName ? 50 : 3;
    if (Object.keys(attributes).length > maxAttributes) {
      throw invalid(`A thing ${thingTypeName ? 'with' : 'without'} a thing type can have at most ${maxAttributes} attributes`);
    }
    const existing = this.thingRecords.get(name);
    if (existing) {
      if (existing.thingTypeName === thingTypeName && sameAttributes(existing.attributes, attributes)) {
        return { thingName: existing.name, thingArn: existing.arn, thingId: existing.id };
      }
      throw alreadyExists(`Thing ${name} already exists in account with different attributes or thing type`, existing.id, existing.arn);
    }
    const record: ThingRecord = {
      name,
      arn: `arn:aws:iot:${this.region}:${this.account}:thing/${name}`,
      id: randomUUID(),
      thingTypeName,
      attributes,
      version: 1,
    };
    this.thingRecords.set(name, record);
    return { thingName: record.name, thingArn: record.arn, thingId: record.id };
  }

  private thingRecord(rawName: string): ThingRecord {
    const name = thingNameParam(rawName);
    const record = this.thingRecords.get(name);
    if (!record) throw notFound(`Thing ${name} cannot be found.`);
    return record;
  }

  private describeThing(req: Request): unknown {
    const record = this.thingRecord(req.params[0]);
    return {
      defaultClientId: record.name,
      thingName: record.name,
      thingId: record.id,
      thingArn: record.arn,
      thingTypeName: record.thingTypeName,
      attributes: record.attributes,
      version: record.version,
    };
  }

  private listThingGroupsForThing(req: Request): unknown {
    const thing = this.thingRecord(req.params[0]);
    const groups = this.thingGroupsOf(thing.name).map((name) => ({ groupName: name, groupArn: this.thingGroups.get(name)!.arn }));
    const { items, next } = page(groups, pageSizeQuery(req.query, 'maxResults'), req.query.get('nextToken'));
    return { thingGroups: items, nextToken: next };
  }

  // ---- thing types and thing groups ---------------------------------------------------------------------------

  /** Creates the type, or returns it when it exists with the same configuration (as AWS does). */
  private putThingType(name: string, description: string | undefined, searchableAttributes: string[]): ThingTypeRecord {
    const arn = `arn:aws:iot:${this.region}:${this.account}:thingtype/${name}`;
    const existing = this.thingTypes.get(name);
    if (existing) {
      if (existing.description === description && sameList(existing.searchableAttributes, searchableAttributes)) return existing;
      throw alreadyExists(`Thing type ${name} already exists with a different configuration`, existing.id, existing.arn);
    }
    const record: ThingTypeRecord = { name, arn, id: randomUUID(), description, searchableAttributes: [...searchableAttributes], deprecated: false, created: Date.now() };
    this.thingTypes.set(name, record);
    return record;
  }

  private thingTypeRecord(rawName: string): ThingTypeRecord {
    const name = thingTypeNameParam(rawName);
    const record = this.thingTypes.get(name);
    if (!record) throw notFound(`Thing type ${name} does not exist`);
    return record;
  }

  private createThingTypeOperation(req: Request): unknown {
    const name = thingTypeNameParam(req.params[0]);
    const properties = optionalObject(req.body.thingTypeProperties, 'thingTypeProperties');
    const description = optionalString(properties.thingTypeDescription, 'thingTypeProperties.thingTypeDescription', 2028);
    const searchable = properties.searchableAttributes ?? [];
    if (!Array.isArray(searchable) || searchable.some((a) => typeof a !== 'string' || !/^[a-zA-Z0-9_.,@/:#-]{1,128}$/.test(a))) {
      throw invalid('thingTypeProperties.searchableAttributes must be a list of attribute names');
    }
    if (searchable.length > 3) throw invalid('A thing type can have at most 3 searchable attributes');
    if (req.body.tags !== undefined && !Array.isArray(req.body.tags)) throw invalid('tags must be a list');
    const record = this.putThingType(name, description, searchable as string[]);
    return { thingTypeName: record.name, thingTypeArn: record.arn, thingTypeId: record.id };
  }

  private describeThingType(req: Request): unknown {
    const record = this.thingTypeRecord(req.params[0]);
    return {
      thingTypeName: record.name,
      thingTypeId: record.id,
      thingTypeArn: record.arn,
      thingTypeProperties: { thingTypeDescription: record.description, searchableAttributes: record.searchableAttributes },
      thingTypeMetadata: {
        deprecated: record.deprecated,
        deprecationDate: record.deprecationDate === undefined ? undefined : record.deprecationDate / 1000,
        creationDate: record.created / 1000,
      },
    };
  }

  private deprecateThingTypeOperation(req: Request): unknown {
    const record = this.thingTypeRecord(req.params[0]);
    const undo = req.body.undoDeprecate;
    if (undo !== undefined && typeof undo !== 'boolean') throw invalid('undoDeprecate must be a boolean');
    this.deprecateThingType(record.name, !undo);
    return {};
  }

  /** Creates the group, or returns it when it exists with the same configuration (as AWS does). */
  private putThingGroup(name: string, description: string | undefined, attributes: Record<string, string>, parentGroupName: string | undefined): ThingGroupRecord {
    if (parentGroupName !== undefined) {
      thingGroupNameParam(parentGroupName);
      if (!this.thingGroups.has(parentGroupName)) throw notFound(`Thing group ${parentGroupName} does not exist`);
      if (this.ancestorsOf(parentGroupName).length + 1 >= 7) throw invalid('A thing group hierarchy can be at most 7 levels deep');
    }
    if (Object.keys(attributes).length > 50) throw invalid('A thing group can have at most 50 attributes');
    const arn = `arn:aws:iot:${this.region}:${this.account}:thinggroup/${name}`;
    const existing = this.thingGroups.get(name);
    if (existing) {
      if (existing.description === description && existing.parentGroupName === parentGroupName && sameAttributes(existing.attributes, attributes)) return existing;
      throw alreadyExists(`Thing group ${name} already exists with a different configuration`, existing.id, existing.arn);
    }
    const record: ThingGroupRecord = { name, arn, id: randomUUID(), description, attributes: { ...attributes }, parentGroupName, version: 1, created: Date.now() };
    this.thingGroups.set(name, record);
    return record;
  }

  /** The group's ancestors, root first. */
  private ancestorsOf(groupName: string): ThingGroupRecord[] {
    const chain: ThingGroupRecord[] = [];
    for (let parent = this.thingGroups.get(groupName)?.parentGroupName; parent !== undefined; parent = this.thingGroups.get(parent)?.parentGroupName) {
      chain.unshift(this.thingGroups.get(parent)!);
    }
    return chain;
  }

  private thingGroupRecord(rawName: string): ThingGroupRecord {
    const name = thingGroupNameParam(rawName);
    const record = this.thingGroups.get(name);
    if (!record) throw notFound(`Thing group ${name} does not exist`);
    return record;
  }

  private createThingGroupOperation(req: Request): unknown {
    const name = thingGroupNameParam(req.params[0]);
    const parent = req.body.parentGroupName;
    if (parent !== undefined && typeof parent !== 'string') throw invalid('parentGroupName must be a string');
    const properties = optionalObject(req.body.thingGroupProperties, 'thingGroupProperties');
    const description = optionalString(properties.thingGroupDescription, 'thingGroupProperties.thingGroupDescription', 2028);
    const attributes = attributeMap(properties.attributePayload, 'thingGroupProperties.attributePayload');
    if (req.body.tags !== undefined && !Array.isArray(req.body.tags)) throw invalid('tags must be a list');
    const record = this.putThingGroup(name, description, attributes, parent);
    return { thingGroupName: record.name, thingGroupArn: record.arn, thingGroupId: record.id };
  }

  private describeThingGroup(req: Request): unknown {
    const record = this.thingGroupRecord(req.params[0]);
    return {
      thingGroupName: record.name,
      thingGroupId: record.id,
      thingGroupArn: record.arn,
      version: record.version,
      thingGroupProperties: { thingGroupDescription: record.description, attributePayload: { attributes: record.attributes } },
      thingGroupMetadata: {
        parentGroupName: record.parentGroupName,
        rootToParentThingGroups: this.ancestorsOf(record.name).map((group) => ({ groupName: group.name, groupArn: group.arn })),
        creationDate: record.created / 1000,
      },
    };
  }

  /** The thing group and the thing, each by name or ARN (both given must agree); adding a member again is a no-op. */
  private addThingToThingGroup(req: Request): unknown {
    const { body } = req;
    const group = this.byNameOrArn(body, 'thingGroupName', 'thingGroupArn', 'thinggroup', (name) => this.thingGroupRecord(name));
    const thing = this.byNameOrArn(body, 'thingName', 'thingArn', 'thing', (name) => this.thingRecord(name));
    if (body.overrideDynamicGroups !== undefined && typeof body.overrideDynamicGroups !== 'boolean') throw invalid('overrideDynamicGroups must be a boolean');
    const groups = this.thingGroupMembership.get(thing.name) ?? new Set<string>();
    groups.add(group.name);
    this.thingGroupMembership.set(thing.name, groups);
    return {};
  }

  private byNameOrArn<T extends { name: string; arn: string }>(body: Record<string, unknown>, nameField: string, arnField: string, resource: string, find: (name: string) => T): T {
    const name = body[nameField];
    const arn = body[arnField];
    if (name !== undefined && typeof name !== 'string') throw invalid(`${nameField} must be a string`);
    if (arn !== undefined && typeof arn !== 'string') throw invalid(`${arnField} must be a string`);
    if (name === undefined && arn === undefined) throw invalid(`${nameField} or ${arnField} is required`);
    let fromArn: string | undefined;
    if (arn !== undefined) {
      const prefix = `arn:aws:iot:${this.region}:${this.account}:${resource}/`;
      if (!arn.startsWith(prefix)) throw invalid(`${arnField} ${arn} is not a ${resource} ARN of this account and region`);
      fromArn = arn.slice(prefix.length);
    }
    if (name !== undefined && fromArn !== undefined && name !== fromArn) throw invalid(`${nameField} and ${arnField} name different resources`);
    return find((name ?? fromArn)!);
  }

  /** A certificate ARN of this account and region naming a registered certificate. */
  private certificatePrincipal(principal: string, what: string): CertificateRecord {
    const match = /^arn:aws:iot:([a-z0-9-]+):(\d{12}):cert\/([0-9a-f]{64})$/.exec(principal);
    if (!match) throw invalid(`${what} ${principal} is not a certificate ARN (the stand-in supports certificate principals only)`);
    const record = this.certificates.get(match[3]);
    if (!record || match[1] !== this.region || match[2] !== this.account) throw notFound(`The certificate ${principal} does not exist`);
    return record;
  }

  private principalHeader(req: Request): string {
    const principal = req.headers['x-amzn-principal'];
    if (typeof principal !== 'string' || principal.length === 0) throw invalid('the principal (x-amzn-principal header) is required');
    return principal;
  }

  private attachThingPrincipal(req: Request): unknown {
    const thing = this.thingRecord(req.params[0]);
    const principal = this.principalHeader(req);
    const type = req.query.get('thingPrincipalType') ?? 'NON_EXCLUSIVE_THING';
    if (type !== 'EXCLUSIVE_THING' && type !== 'NON_EXCLUSIVE_THING') throw invalid(`thingPrincipalType must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING, not ${type}`);
    this.certificatePrincipal(principal, 'principal');
    for (const [otherThing, principals] of this.thingPrincipalMap) {
      const otherType = principals.get(principal);
      if (otherThing === thing.name || otherType === undefined) continue;
      if (otherType === 'EXCLUSIVE_THING' || type === 'EXCLUSIVE_THING') {
        throw invalid(`The principal is attached to thing ${otherThing} and one of the attachments is EXCLUSIVE_THING`);
      }
    }
    const principals = this.thingPrincipalMap.get(thing.name) ?? new Map<string, string>();
    principals.set(principal, type);
    this.thingPrincipalMap.set(thing.name, principals);
    return {};
  }

  /**
   * An unknown thing or certificate, and a principal that is not attached to the thing, are ResourceNotFoundException
   * (as in moto; AWS does not document which it answers for a missing attachment, so callers must take both a
   * success and a 404 as "detached"). AWS detaches asynchronously; here it is at once.
   */
  private detachThingPrincipal(req: Request): unknown {
    const thing = this.thingRecord(req.params[0]);
    const principal = this.principalHeader(req);
    this.certificatePrincipal(principal, 'principal');
    if (!this.thingPrincipalMap.get(thing.name)?.delete(principal)) {
      throw notFound(`The principal ${principal} is not attached to thing ${thing.name}`);
    }
    return {};
  }

  private listThingPrincipals(req: Request): unknown {
    const thing = this.thingRecord(req.params[0]);
    const { items, next } = page(this.principalsOf(thing.name), pageSizeQuery(req.query, 'maxResults'), req.query.get('nextToken'));
    return { principals: items, nextToken: next };
  }

  // ---- policies -----------------------------------------------------------------------------------------------

  private policyRecord(rawName: string): PolicyRecord {
    const name = policyNameParam(rawName);
    const record = this.policies.get(name);
    if (!record) throw notFound(`Policy ${name} does not exist`);
    return record;
  }

  private createPolicy(req: Request): unknown {
    const name = policyNameParam(req.params[0]);
    const document = policyDocumentParam(req.body);
    if (req.body.tags !== undefined && !Array.isArray(req.body.tags)) throw invalid('tags must be a list');
    const arn = `arn:aws:iot:${this.region}:${this.account}:policy/${name}`;
    if (this.policies.has(name)) throw alreadyExists(`Policy ${name} already exists`, name, arn);
    const now = Date.now();
    const version: PolicyVersionRecord = { id: '1', document, created: now, generationId: randomUUID() };
    const record: PolicyRecord = {
      name,
      arn,
      versions: new Map([[version.id, version]]),
      defaultVersionId: version.id,
      nextVersionId: 2,
      created: now,
      lastModified: now,
      generationId: randomUUID(),
    };
    this.policies.set(name, record);
    return { policyName: name, policyArn: arn, policyDocument: document, policyVersionId: version.id };
  }

  /** The default version's document and id (what AWS IoT evaluates for the certificates the policy is attached to). */
  private getPolicy(req: Request): unknown {
    const record = this.policyRecord(req.params[0]);
    const version = this.defaultVersion(record);
    return {
      policyName: record.name,
      policyArn: record.arn,
      policyDocument: version.document,
      defaultVersionId: record.defaultVersionId,
      creationDate: record.created / 1000,
      lastModifiedDate: record.lastModified / 1000,
      generationId: record.generationId,
    };
  }

  private defaultVersion(record: PolicyRecord): PolicyVersionRecord {
    return record.versions.get(record.defaultVersionId)!;
  }

  private policyVersionRecord(record: PolicyRecord, rawId: string): PolicyVersionRecord {
    if (!/^[0-9]+$/.test(rawId)) throw invalid(`policyVersionId ${rawId} must be digits`);
    const version = record.versions.get(String(Number(rawId)));
    if (!version) throw notFound(`Policy ${record.name} has no version ${rawId}`);
    return version;
  }

  /** Refuses a sixth version: AWS IoT keeps at most five, and the caller must delete one (not the default) first. */
  private createPolicyVersion(req: Request): unknown {
    const record = this.policyRecord(req.params[0]);
    const document = policyDocumentParam(req.body);
    const setAsDefault = booleanQuery(req.query, 'setAsDefault') ?? false;
    if (record.versions.size >= MAX_POLICY_VERSIONS) {
      throw new IotError(
        'VersionsLimitExceededException',
        `The policy ${record.name} already has the maximum number of versions (${MAX_POLICY_VERSIONS}); delete one with DeletePolicyVersion first`,
        409,
      );
    }
    const now = Date.now();
    const version: PolicyVersionRecord = { id: String(record.nextVersionId++), document, created: now, generationId: randomUUID() };
    record.versions.set(version.id, version);
    if (setAsDefault) record.defaultVersionId = version.id;
    record.lastModified = now;
    record.generationId = randomUUID();
    return { policyArn: record.arn, policyDocument: document, policyVersionId: version.id, isDefaultVersion: setAsDefault };
  }

  /** Every kept version, oldest first, with which one is the default. */
  private listPolicyVersions(req: Request): unknown {
    const record = this.policyRecord(req.params[0]);
    return {
      policyVersions: [...record.versions.values()].map((version) => ({
        versionId: version.id,
        isDefaultVersion: version.id === record.defaultVersionId,
        createDate: version.created / 1000,
      })),
    };
  }

  private getPolicyVersion(req: Request): unknown {
    const record = this.policyRecord(req.params[0]);
    const version = this.policyVersionRecord(record, req.params[1]);
    return {
      policyArn: record.arn,
      policyName: record.name,
      policyDocument: version.document,
      policyVersionId: version.id,
      isDefaultVersion: version.id === record.defaultVersionId,
      creationDate: version.created / 1000,
      lastModifiedDate: version.created / 1000,
      generationId: version.generationId,
    };
  }

  /** The default version cannot be deleted this way (AWS: DeletePolicy does that): DeleteConflictException. */
  private deletePolicyVersion(req: Request): unknown {
    const record = this.policyRecord(req.params[0]);
    const version = this.policyVersionRecord(record, req.params[1]);
    if (version.id === record.defaultVersionId) {
      throw new IotError('DeleteConflictException', `Version ${version.id} is the default version of policy ${record.name} and cannot be deleted`, 409);
    }
    record.versions.delete(version.id);
    return {};
  }

  private setDefaultPolicyVersion(req: Request): unknown {
    const record = this.policyRecord(req.params[0]);
    const version = this.policyVersionRecord(record, req.params[1]);
    if (record.defaultVersionId !== version.id) {
      record.defaultVersionId = version.id;
      record.lastModified = Date.now();
      record.generationId = randomUUID();
    }
    return {};
  }

  private attachPolicy(req: Request): unknown {
    const policy = this.policyRecord(req.params[0]);
    const target = requiredString(req.body, 'target');
    this.certificatePrincipal(target, 'target');
    const attached = this.targetPolicies.get(target) ?? new Set<string>();
    if (!attached.has(policy.name) && attached.size >= 10) throw limitExceeded('At most 10 policies can be attached to a target');
    attached.add(policy.name);
    this.targetPolicies.set(target, attached);
    return {};
  }

  private detachPolicy(req: Request): unknown {
    const name = policyNameParam(req.params[0]);
    const target = requiredString(req.body, 'target');
    this.targetPolicies.get(target)?.delete(name);
    return {};
  }

  private listAttachedPolicies(req: Request): unknown {
    const target = req.params[0];
    this.certificatePrincipal(target, 'target');
    booleanQuery(req.query, 'recursive');
    const policies = this.policiesAttachedTo(target).map((name) => ({ policyName: name, policyArn: this.policies.get(name)?.arn }));
    const { items, next } = page(policies, pageSizeQuery(req.query, 'pageSize'), req.query.get('marker'));
    return { policies: items, nextMarker: next };
  }

  // ---- topic rule destinations --------------------------------------------------------------------------------

  // The states and moves follow AWS's pages: "HTTP topic rule destination overview" (ENABLED: "A destination must be
  // in the ENABLED state for it to be used in a rule. You can only enable a destination that's in DISABLED status";
  // DISABLED: "You can only disable a destination that's in ENABLED status"), "Managing HTTP topic rule destinations"
  // (confirm with the token, then UpdateTopicRuleDestination ENABLED) and API_UpdateTopicRuleDestination (IN_PROGRESS
  // "causes a new confirmation challenge to be sent"). AWS does not document which error a move it does not allow
  // gets, nor the answer to an unknown ARN or token (none of these operations has ResourceNotFoundException in its
  // model): the stand-in answers InvalidRequestException, and ConflictingResourceUpdateException only through the
  // conflictingUpdates knob.

  private destinationArn(id: string): string {
    return `arn:aws:iot:${this.region}:${this.account}:ruledestination/http/${id}`;
  }

  private confirmationMessage(record: DestinationRecord): IotDestinationConfirmation {
    return {
      arn: record.arn,
      confirmationToken: record.token,
      enableUrl: `https://iot.${this.region}.amazonaws.com/confirmdestination/${record.token}`,
      messageType: 'DestinationConfirmation',
    };
  }

  private destinationView(record: DestinationRecord): IotTopicRuleDestinationView {
    return {
      arn: record.arn,
      status: record.status,
      ...(record.statusReason ? { statusReason: record.statusReason } : {}),
      confirmationUrl: record.confirmationUrl,
      createdAt: new Date(record.created),
      lastUpdatedAt: new Date(record.lastUpdated),
      confirmation: this.confirmationMessage(record),
    };
  }

  /** The TopicRuleDestination shape on the wire (timestamps in epoch seconds). */
  private destinationJson(record: DestinationRecord): Record<string, unknown> {
    return {
      arn: record.arn,
      status: record.status,
      ...(record.statusReason ? { statusReason: record.statusReason } : {}),
      createdAt: record.created / 1000,
      lastUpdatedAt: record.lastUpdated / 1000,
      httpUrlProperties: { confirmationUrl: record.confirmationUrl },
    };
  }

  private destinationRecord(arn: unknown): DestinationRecord {
    if (typeof arn !== 'string' || arn.length === 0) throw invalid('arn is required');
    const record = this.destinations.get(arn);
    if (!record) throw invalid(`No topic rule destination ${arn.slice(0, 300)}`);
    return record;
  }

  private createTopicRuleDestination(req: Request): unknown {
    const configuration = optionalObject(req.body.destinationConfiguration, 'destinationConfiguration');
    if (configuration.vpcConfiguration !== undefined || configuration.influxDBConfiguration !== undefined) {
      throw invalid('the stand-in supports HTTP destinations only (httpUrlConfiguration)');
    }
    const http = optionalObject(configuration.httpUrlConfiguration, 'httpUrlConfiguration');
    const confirmationUrl = optionalString(http.confirmationUrl, 'confirmationUrl', 2000);
    if (!confirmationUrl) throw invalid('destinationConfiguration.httpUrlConfiguration.confirmationUrl is required');
    try {
      new URL(confirmationUrl);
    } catch {
      throw invalid('confirmationUrl is not a URL');
    }
    const existing = [...this.destinations.values()].find((d) => d.confirmationUrl === confirmationUrl);
    if (existing) throw alreadyExists(`A topic rule destination with confirmation URL ${confirmationUrl} already exists`, existing.arn, existing.arn);
    const { arn } = this.seedTopicRuleDestination({ confirmationUrl });
    return { topicRuleDestination: this.destinationJson(this.destinations.get(arn)!) };
  }

  private getTopicRuleDestination(req: Request): unknown {
    return { topicRuleDestination: this.destinationJson(this.destinationRecord(req.params[0])) };
  }

  private listTopicRuleDestinations(req: Request): unknown {
    const summaries = [...this.destinations.values()].map((record) => {
      const { httpUrlProperties, ...rest } = this.destinationJson(record);
      return { ...rest, httpUrlSummary: httpUrlProperties };
    });
    const { items, next } = page(summaries, pageSizeQuery(req.query, 'maxResults'), req.query.get('nextToken'));
    return { destinationSummaries: items, nextToken: next };
  }

  private updateTopicRuleDestination(req: Request): unknown {
    const record = this.destinationRecord(req.body.arn);
    const status = req.body.status as IotTopicRuleDestinationStatus;
    if (!DESTINATION_STATUSES.includes(status)) throw invalid(`status must be one of ${DESTINATION_STATUSES.join(', ')}`);
    const from = record.status;
    switch (status) {
      case 'ENABLED':
        if (from !== 'DISABLED') throw invalid(`You can only enable a destination that's in DISABLED status; ${record.arn} is ${from}`);
        break;
      case 'DISABLED':
        if (from !== 'ENABLED') throw invalid(`You can only disable a destination that's in ENABLED status; ${record.arn} is ${from}`);
        break;
      case 'IN_PROGRESS':
        // A new confirmation challenge: a new token, and the old one no longer confirms anything.
        if (from === 'DELETING') throw invalid(`${record.arn} is being deleted`);
        record.token = newConfirmationToken();
        break;
      default:
        throw invalid(`status ${status} cannot be set; it is one AWS IoT sets`);
    }
    record.status = status;
    record.statusReason = undefined;
    record.lastUpdated = Date.now();
    return {};
  }

  /**
   * The token confirms the destination it was sent for: IN_PROGRESS becomes DISABLED (confirmed, still no traffic: the
   * owner must then enable it). A destination already confirmed stays as it is; one in ERROR (the confirmation timed
   * out) needs a new challenge first. An unknown token is refused.
   */
  private confirmTopicRuleDestination(req: Request): unknown {
    const token = req.params[0];
    if (token.length === 0 || token.length > 2048) throw invalid('confirmationToken must be 1 to 2048 characters');
    const record = [...this.destinations.values()].find((d) => d.token === token);
    if (!record) throw invalid('The confirmation token is not valid');
    if (record.status === 'ERROR' || record.status === 'DELETING') throw invalid(`${record.arn} is ${record.status}: ask for a new confirmation (UpdateTopicRuleDestination IN_PROGRESS)`);
    if (record.status === 'IN_PROGRESS') {
      record.status = 'DISABLED';
      record.statusReason = undefined;
      record.lastUpdated = Date.now();
    }
    if (!this.confirmations.includes(token)) this.confirmations.push(token);
    return {};
  }

  // ---- jobs ---------------------------------------------------------------------------------------------------

  private jobArn(jobId: string): string {
    return `arn:aws:iot:${this.region}:${this.account}:job/${jobId}`;
  }

  private jobRecord(rawId: string): JobRecord {
    const id = jobIdParam(rawId);
    const record = this.jobRecords.get(id);
    if (!record) throw notFound(`Job ${id} cannot be found.`);
    return record;
  }

  /** A thing or thing group ARN of this account and region naming one that exists. */
  private jobTarget(target: unknown): string {
    if (typeof target !== 'string' || target.length === 0 || target.length > 2048) throw invalid('each target must be an ARN of at most 2048 characters');
    const match = /^arn:aws:iot:([a-z0-9-]+):(\d{12}):(thing|thinggroup)\/([a-zA-Z0-9:_-]{1,128})$/.exec(target);
    if (!match) throw invalid(`target ${target} is not a thing or thing group ARN`);
    if (match[1] !== this.region || match[2] !== this.account) throw invalid(`target ${target} is not in this account and region`);
    const known = match[3] === 'thing' ? this.thingRecords.get(match[4]) : this.thingGroups.get(match[4]);
    if (!known) throw notFound(`${match[3] === 'thing' ? 'Thing' : 'Thing group'} ${match[4]} cannot be found.`);
    return target;
  }

  private createJob(req: Request): unknown {
    const id = jobIdParam(req.params[0]);
    const { body } = req;
    const targets = body.targets;
    if (!Array.isArray(targets) || targets.length === 0) throw invalid('targets is required: at least one thing or thing group ARN');
    if (targets.length > MAX_JOB_TARGETS) throw invalid(`A job can have at most ${MAX_JOB_TARGETS} targets, not ${targets.length}`);
    const checkedTargets = targets.map((target) => this.jobTarget(target));

    if (body.documentSource !== undefined || body.jobTemplateArn !== undefined || body.documentParameters !== undefined) {
      throw invalid('the stand-in supports inline job documents only (document), not documentSource, jobTemplateArn or documentParameters');
    }
    const document = body.document;
    if (document === undefined) throw invalid('document or documentSource is required');
    if (typeof document !== 'string' || document.length === 0) throw invalid('document must be a non-empty string');
    if (Buffer.byteLength(document, 'utf8') > MAX_JOB_DOCUMENT_BYTES) {
      throw invalid(`The job document is larger than ${MAX_JOB_DOCUMENT_BYTES} bytes (${Buffer.byteLength(document, 'utf8')})`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(document);
    } catch {
      throw invalid('The job document is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('The job document must be a JSON object');

    const description = optionalString(body.description, 'description', 2028);
    if (description !== undefined && (description.length === 0 || /\p{C}/u.test(description))) {
      throw invalid('description must be 1 to 2028 characters without control characters');
    }
    const targetSelection = body.targetSelection ?? 'SNAPSHOT';
    if (targetSelection !== 'SNAPSHOT' && targetSelection !== 'CONTINUOUS') throw invalid(`targetSelection must be SNAPSHOT or CONTINUOUS, not ${String(targetSelection)}`);
    if (body.tags !== undefined && !Array.isArray(body.tags)) throw invalid('tags must be a list');

    // CreateJob is not idempotent: the same id again, whatever the rest, is refused (no resourceArn is relied on).
    if (this.jobRecords.has(id)) throw new IotError('ResourceAlreadyExistsException', `Job ${id} already exists.`, 409);
    const now = Date.now();
    const record: JobRecord = {
      id,
      arn: this.jobArn(id),
      targets: checkedTargets,
      document,
      description,
      targetSelection,
      status: 'IN_PROGRESS',
      created: now,
      lastUpdated: now,
    };
    this.jobRecords.set(id, record);
    return { jobArn: record.arn, jobId: record.id, description: record.description };
  }

  private describeJob(req: Request): unknown {
    const record = this.jobRecord(req.params[0]);
    booleanQuery(req.query, 'beforeSubstitution');
    return {
      job: {
        jobArn: record.arn,
        jobId: record.id,
        targetSelection: record.targetSelection,
        status: record.status,
        forceCanceled: false,
        targets: record.targets,
        description: record.description,
        createdAt: record.created / 1000,
        lastUpdatedAt: record.lastUpdated / 1000,
        completedAt: record.completed === undefined ? undefined : record.completed / 1000,
        isConcurrent: false,
      },
    };
  }

  private getJobDocument(req: Request): unknown {
    const record = this.jobRecord(req.params[0]);
    booleanQuery(req.query, 'beforeSubstitution');
    return { document: record.document };
  }

  /** Newest first; filtered by status, targetSelection and a targeted thing group (by name). */
  private listJobs(req: Request): unknown {
    const { query } = req;
    const status = query.get('status');
    if (status !== null && !JOB_STATUSES.includes(status as IotJobStatus)) throw invalid(`status must be one of ${JOB_STATUSES.join(', ')}`);
    const targetSelection = query.get('targetSelection');
    if (targetSelection !== null && targetSelection !== 'SNAPSHOT' && targetSelection !== 'CONTINUOUS') throw invalid('targetSelection must be SNAPSHOT or CONTINUOUS');
    const groupName = query.get('thingGroupName');
    let groupArn: string | undefined;
    if (groupName !== null) groupArn = this.thingGroupRecord(groupName).arn;
    const groupId = query.get('thingGroupId');
    if (groupId !== null) {
      const group = [...this.thingGroups.values()].find((g) => g.id === groupId);
      if (!group) throw notFound(`Thing group ${groupId} cannot be found.`);
      if (groupArn !== undefined && groupArn !== group.arn) throw invalid('thingGroupName and thingGroupId name different groups');
      groupArn = group.arn;
    }
    const jobs = [...this.jobRecords.values()]
      .filter((job) => (status === null || job.status === status) && (targetSelection === null || job.targetSelection === targetSelection))
      .filter((job) => groupArn === undefined || job.targets.includes(groupArn))
      .sort((a, b) => b.created - a.created)
      .map((job) => ({
        jobArn: job.arn,
        jobId: job.id,
        targetSelection: job.targetSelection,
        status: job.status,
        createdAt: job.created / 1000,
        lastUpdatedAt: job.lastUpdated / 1000,
        completedAt: job.completed === undefined ? undefined : job.completed / 1000,
        isConcurrent: false,
      }));
    const { items, next } = page(jobs, pageSizeQuery(query, 'maxResults'), query.get('nextToken'));
    return { jobs: items, nextToken: next };
  }

  // ---- helpers ------------------------------------------------------------------------------------------------

  private touch(record: { lastModified: number; customerVersion: number; generationId: string }): void {
    record.lastModified = Date.now();
    record.customerVersion++;
    record.generationId = randomUUID();
  }

  private certificateView(record: CertificateRecord): IotCertificateView {
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

  private caView(record: CaRecord): IotCaCertificateView {
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

  private thingView(record: ThingRecord): IotThingView {
    return {
      thingName: record.name,
      thingArn: record.arn,
      thingId: record.id,
      thingTypeName: record.thingTypeName,
      attributes: { ...record.attributes },
      thingGroups: this.thingGroupsOf(record.name),
      version: record.version,
    };
  }

  private policyView(record: PolicyRecord): IotPolicyView {
    const versionView = (version: PolicyVersionRecord): IotPolicyVersionView => ({
      versionId: version.id,
      isDefaultVersion: version.id === record.defaultVersionId,
      document: JSON.parse(version.document) as unknown,
      documentText: version.document,
      createdAt: new Date(version.created),
    });
    const current = versionView(this.defaultVersion(record));
    return {
      policyName: record.name,
      policyArn: record.arn,
      defaultVersionId: record.defaultVersionId,
      document: current.document,
      documentText: current.documentText,
      versions: [...record.versions.values()].map(versionView),
      createdAt: new Date(record.created),
      lastModifiedAt: new Date(record.lastModified),
    };
  }

  private jobView(record: JobRecord): IotJobView {
    return {
      jobId: record.id,
      jobArn: record.arn,
      targets: [...record.targets],
      document: JSON.parse(record.document) as unknown,
      description: record.description,
      targetSelection: record.targetSelection,
      status: record.status,
      createdAt: new Date(record.created),
    };
  }

  private thingTypeView(record: ThingTypeRecord): IotThingTypeView {
    return {
      thingTypeName: record.name,
      thingTypeArn: record.arn,
      thingTypeId: record.id,
      description: record.description,
      searchableAttributes: [...record.searchableAttributes],
      deprecated: record.deprecated,
      createdAt: new Date(record.created),
    };
  }

  private thingGroupView(record: ThingGroupRecord): IotThingGroupView {
    return {
      thingGroupName: record.name,
      thingGroupArn: record.arn,
      thingGroupId: record.id,
      description: record.description,
      attributes: { ...record.attributes },
      parentGroupName: record.parentGroupName,
      things: [...this.thingGroupMembership.entries()].filter(([, groups]) => groups.has(record.name)).map(([thing]) => thing),
      version: record.version,
      createdAt: new Date(record.created),
    };
  }
}

// ---- certificate checks -------------------------------------------------------------------------------------------

/** The AWS IoT certificate id: SHA-256 of the DER, lowercase hex. */
function idOf(x509: X509Certificate): string {
  return createHash('sha256').update(x509.raw).digest('hex');
}

function parseCertificate(pem: string, field: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw certificateValidation(`${field} is not a PEM certificate`);
  try {
    return new X509Certificate(pem);
  } catch {
    throw certificateValidation(`${field} is not a valid certificate`);
  }
}

function validAt(x509: X509Certificate, now: number): boolean {
  return Date.parse(x509.validFrom) <= now && now <= Date.parse(x509.validTo);
}

function validity(x509: X509Certificate): { notBefore: number; notAfter: number } {
  return { notBefore: Date.parse(x509.validFrom) / 1000, notAfter: Date.parse(x509.validTo) / 1000 };
}

/** The issuer certificate's subject names this certificate's issuer and its key verifies the signature. */
function issuedBy(x509: X509Certificate, issuer: X509Certificate): boolean {
  return x509.issuer === issuer.subject && x509.verify(issuer.publicKey);
}

function commonName(x509: X509Certificate): string | undefined {
  const line = x509.subject.split('\n').find((part) => part.startsWith('CN='));
  return line?.slice(3);
}

/** RSA ≥ 2048 or EC P-256/P-384/P-521. */
function keyPolicyProblem(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    return (details.modulusLength ?? 0) >= 2048 ? undefined : `RSA keys must be at least 2048 bits, not ${details.modulusLength}`;
  }
  if (key.asymmetricKeyType === 'ec') {
    return ACCEPTED_CURVES.has(details.namedCurve ?? '') ? undefined : `the EC curve ${details.namedCurve} is not supported`;
  }
  return `${key.asymmetricKeyType} keys are not supported`;
}

/** Key and signature algorithm rules AWS IoT applies to device certificates. */
function deviceCertificateProblem(x509: X509Certificate): string | undefined {
  const keyProblem = keyPolicyProblem(x509.publicKey);
  if (keyProblem) return `The certificate key is not supported: ${keyProblem}`;
  const oid = signatureAlgorithmOid(x509.raw);
  if (!oid || !ACCEPTED_SIGNATURE_OIDS[oid]) return 'The certificate signature algorithm is not supported (SHA-256 or stronger with RSA or ECDSA)';
  return undefined;
}

/** Hex DER of the OID in Certificate.signatureAlgorithm (the element after tbsCertificate). */
function signatureAlgorithmOid(der: Buffer): string | undefined {
  try {
    const outer = tlv(der, 0);
    const tbs = tlv(der, outer.contentStart);
    const algorithm = tlv(der, tbs.end);
    const oid = tlv(der, algorithm.contentStart);
    return oid.tag === 0x06 ? der.subarray(oid.start, oid.end).toString('hex') : undefined;
  } catch {
    return undefined;
  }
}

function tlv(der: Buffer, offset: number): { tag: number; start: number; contentStart: number; end: number } {
  const tag = der[offset];
  let length = der[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i];
    contentStart += count;
  }
  if (tag === undefined || contentStart + length > der.length) throw new Error('truncated DER');
  return { tag, start: offset, contentStart, end: contentStart + length };
}

// ---- parameter checks ---------------------------------------------------------------------------------------------

/** A confirmation token shaped like AWS's (a long URL-safe string; AWS's are longer still). */
function newConfirmationToken(): string {
  return `AYADe${randomBytes(48).toString('base64url')}`;
}

function requiredString(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} is required`);
  if (value.length > 65536) throw invalid(`${field} is longer than 65536 characters`);
  return value;
}

function booleanQuery(query: URLSearchParams, name: string): boolean | undefined {
  const value = query.get(name);
  if (value === null) return undefined;
  if (value !== 'true' && value !== 'false') throw invalid(`${name} must be true or false`);
  return value === 'true';
}

function pageSizeQuery(query: URLSearchParams, name: string): number {
  const value = query.get(name);
  if (value === null) return 25;
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1 || size > 250) throw invalid(`${name} must be between 1 and 250`);
  return size;
}

function page<T>(items: T[], size: number, marker: string | null): { items: T[]; next?: string } {
  let offset = 0;
  if (marker !== null) {
    offset = Number(Buffer.from(marker, 'base64url').toString('utf8'));
    if (!Number.isInteger(offset) || offset < 0) throw invalid('the marker is not valid');
  }
  const end = offset + size;
  return { items: items.slice(offset, end), next: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

function certificateIdParam(raw: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) throw invalid(`certificateId ${raw} is not 64 hexadecimal characters`);
  return raw.toLowerCase();
}

function thingNameParam(raw: string): string {
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(raw)) throw invalid(`thingName ${raw} must be 1 to 128 characters of [a-zA-Z0-9:_-]`);
  return raw;
}

function jobIdParam(raw: string): string {
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(raw)) throw invalid(`jobId ${raw} must be 1 to 64 characters of [a-zA-Z0-9_-]`);
  return raw;
}

function thingTypeNameParam(raw: unknown): string {
  if (typeof raw !== 'string' || !/^[a-zA-Z0-9:_-]{1,128}$/.test(raw)) throw invalid(`thingTypeName ${String(raw)} must be 1 to 128 characters of [a-zA-Z0-9:_-]`);
  return raw;
}

function thingGroupNameParam(raw: string): string {
  if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(raw)) throw invalid(`thingGroupName ${raw} must be 1 to 128 characters of [a-zA-Z0-9:_-]`);
  return raw;
}

function optionalObject(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${field} must be an object`);
  return value as Record<string, unknown>;
}

function optionalString(value: unknown, field: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > max) throw invalid(`${field} must be a string of at most ${max} characters`);
  return value;
}

/** The `attributes` of an AttributePayload: names of 1 to 128 characters, string values of at most 800. */
function attributeMap(payload: unknown, field: string): Record<string, string> {
  const attributes = optionalObject(optionalObject(payload, field).attributes, `${field}.attributes`);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.length === 0 || key.length > 128) throw invalid(`attribute name ${key} must be 1 to 128 characters`);
    if (typeof value !== 'string' || value.length > 800) throw invalid(`attribute ${key} must be a string of at most 800 characters`);
  }
  return { ...(attributes as Record<string, string>) };
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

/**
 * A policy document as AWS IoT checks it on CreatePolicy and CreatePolicyVersion: JSON, an object with a Statement,
 * at most 2048 characters not counting whitespace (MalformedPolicyException otherwise). The grammar of statements
 * is not checked further.
 */
function policyDocumentParam(body: Record<string, unknown>): string {
  const document = requiredString(body, 'policyDocument');
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    throw new IotError('MalformedPolicyException', 'The policy document is not valid JSON', 400);
  }
  if (typeof parsed !== 'object' || parsed === null || !('Statement' in parsed)) {
    throw new IotError('MalformedPolicyException', 'The policy document has no Statement', 400);
  }
  const characters = document.replace(/\s/g, '').length;
  if (characters > MAX_POLICY_DOCUMENT_CHARACTERS) {
    throw new IotError('MalformedPolicyException', `The policy document has ${characters} characters excluding whitespace; the maximum is ${MAX_POLICY_DOCUMENT_CHARACTERS}`, 400);
  }
  return document;
}

/** DER of a certificate's subject Name (TBSCertificate: [0] version, serial, signature, issuer, validity, subject). */
function subjectDer(x509: X509Certificate): Buffer {
  const der = x509.raw;
  const tbs = tlv(der, tlv(der, 0).contentStart);
  let offset = tbs.contentStart;
  const first = tlv(der, offset);
  if (first.tag === 0xa0) offset = first.end;
  for (let skip = 0; skip < 4; skip++) offset = tlv(der, offset).end; // serial, signature, issuer, validity
  const subject = tlv(der, offset);
  return der.subarray(subject.start, subject.end);
}

/** A device certificate naming `ca` as issuer but signed by a throwaway key (see registerForeignCertificate). */
async function foreignCertificate(ca: X509Certificate, commonName: string): Promise<X509Certificate> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const now = Date.now();
  const notAfter = Math.min(now + 365 * 86_400_000, Date.parse(ca.validTo));
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuer: subjectDer(ca),
      subject: buildName({ commonName }),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(notAfter),
      extensions: [
        basicConstraints(false),
        keyUsage([KeyUsageFlags.digitalSignature]),
        extendedKeyUsage([OID.clientAuth]),
        subjectKeyIdentifier(keyIdentifier(spki)),
      ],
    },
    { algorithm: 'ECDSA_SHA_256', sign: async (data: Buffer) => sign('sha256', data, forger) },
  );
  return new X509Certificate(der);
}

function policyNameParam(raw: string): string {
  if (!/^[\w+=,.@-]{1,128}$/.test(raw)) throw invalid(`policyName ${raw} must be 1 to 128 characters of [\\w+=,.@-]`);
  return raw;
}

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}
