import { AwsError } from '../http/aws-error';
import { AwsCall, DROP_CONNECTION, StandInServer, StandInService } from '../http/standin-server';
import { Throttle } from '../http/throttle';
import { restJson } from '../http/wire-protocols';
import { CaCertificates, IotCaCertificateView } from './ca-certificates';
import { Certificates, IotCertificateStatus, IotCertificateView } from './certificates';
import { DeviceConnections, IotDeviceConnectResult } from './device-connections';
import { invalid, IotAccount, IotRoute } from './iot-api';
import { iotHooks } from './iot-hooks';
import { IotStandInKnobs } from './iot-knobs';
import { IotJobStatus, IotJobView, Jobs } from './jobs';
import { LostAnswersAndConflicts } from './lost-answers-and-conflicts';
import { IotPolicyView, Policies } from './policies';
import { PolicyAttachments } from './policy-attachments';
import { IotCertificateRegisteredEvent, RegistrationEvents } from './registration-events';
import { IotRequestLog, IotRequestRecord } from './request-log';
import { ThingGroupMembership } from './thing-group-membership';
import { IotThingGroupView, ThingGroups } from './thing-groups';
import { ThingPrincipals } from './thing-principals';
import { IotThingTypeView, ThingTypes } from './thing-types';
import { IotThingView, Things } from './things';
import { IotDestinationConfirmation, IotTopicRuleDestinationStatus, IotTopicRuleDestinationView, TopicRuleDestinations } from './topic-rule-destinations';

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
 * Several accounts and regions (docs/iot-targets.md): with the `accessKeys` knob (access key id → account id), each call
 * is answered by the (account, region) its SigV4 credential names, each a stand-in of its own (state, knobs, throttling;
 * `place(account, region)`), sharing the rule that one account per region holds a CA in DEFAULT mode.
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
 * - `GET /_standin/events`: the certificate registration events "published" so far;
 * - `GET /_standin/requests`: the request log, every AWS call with the certificate it names (see request-log.ts).
 * - `GET /_standin/accounts`: each account and region played, with its CAs, certificates and things;
 *   `POST /_standin/accounts/{account}/{region}/config`: its knobs; `GET /_standin/accounts/{account}/{region}/certificates/{id}`.
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
 * confirmed with their token, ENABLED only from DISABLED (see topic-rule-destinations.ts). No message is delivered:
 * the stand-in has no rules, and a test forwards the confirmation message (and JITR events) itself.
 *
 * Jobs (CreateJob, DescribeJob, GetJobDocument, ListJobs) keep their targets and document; `jobs()` and `job(id)` (or
 * `GET /_standin/jobs`) show them with the document parsed, and `setJobStatus` moves a job along (no job executions
 * are played).
 *
 * One file per resource beside this one (ca-certificates.ts, certificates.ts, device-connections.ts for JITR,
 * registration-events.ts, things.ts, thing-types.ts, thing-groups.ts, thing-principals.ts, policies.ts,
 * policy-attachments.ts, topic-rule-destinations.ts, jobs.ts); this class composes them and keeps the public API. The
 * knobs are in iot-knobs.ts, the test hooks in iot-hooks.ts; the HTTP side (server, hook routing, wire protocol,
 * throttling) is shared with the KMS stand-in (../http/).
 */
export class IotStandIn {
  readonly region: string;
  readonly account: string;
  knobs: IotStandInKnobs;
  private readonly server: StandInServer;
  private readonly throttle: Throttle;
  private readonly faults: LostAnswersAndConflicts;
  private readonly routes: IotRoute[];
  private readonly cas: CaCertificates;
  private readonly certificates: Certificates;
  private readonly registrationEvents: RegistrationEvents;
  private readonly devices: DeviceConnections;
  private readonly things: Things;
  private readonly membership = new ThingGroupMembership();
  private readonly thingTypes: ThingTypes;
  private readonly thingGroups: ThingGroups;
  private readonly principals: ThingPrincipals;
  private readonly policies: Policies;
  private readonly attachments: PolicyAttachments;
  private readonly destinations: TopicRuleDestinations;
  private readonly jobRegistry: Jobs;
  private readonly requestLog = new IotRequestLog();

  /** Every (account, region) this stand-in plays, keyed `account/region`; itself first (see the accessKeys knob). */
  private readonly places: Map<string, IotStandIn>;

  constructor(knobs: Partial<IotStandInKnobs> = {}, place?: { account: string; region: string; places: Map<string, IotStandIn> }) {
    this.knobs = { latencyMs: 0, tps: 0, throttleProbability: 0, failureMode: 'none', ...knobs };
    const account = new IotAccount(place?.account, place?.region);
    this.places = place?.places ?? new Map();
    this.places.set(`${account.account}/${account.region}`, this);
    this.region = account.region;
    this.account = account.account;
    this.throttle = new Throttle(() => this.knobs);
    this.faults = new LostAnswersAndConflicts(() => this.knobs);
    this.cas = new CaCertificates(account);
    // AWS IoT: a CA is registered in DEFAULT mode by at most one account per region (SNI_ONLY by any number).
    this.cas.defaultElsewhere = (id) =>
      [...this.places.values()].find((other) => other !== this && other.region === this.region && other.account !== this.account && other.cas.view(id)?.certificateMode === 'DEFAULT')
        ?.account;
    this.certificates = new Certificates(account, this.cas);
    this.registrationEvents = new RegistrationEvents(account);
    this.devices = new DeviceConnections(this.cas, this.certificates, this.registrationEvents);
    this.thingTypes = new ThingTypes(account);
    this.things = new Things(account, this.thingTypes, this.membership);
    this.thingGroups = new ThingGroups(account, this.things, this.membership);
    this.principals = new ThingPrincipals(this.things, this.certificates);
    this.policies = new Policies(account);
    this.attachments = new PolicyAttachments(this.policies, this.certificates);
    this.destinations = new TopicRuleDestinations(account);
    this.jobRegistry = new Jobs(account, this.things, this.thingGroups);
    this.routes = [
      ...this.cas.routes(),
      ...this.certificates.routes(),
      ...this.things.routes(),
      ...this.principals.routes(),
      ...this.thingTypes.routes(),
      ...this.thingGroups.routes(),
      ...this.attachments.routes(),
      ...this.destinations.routes(),
      ...this.policies.routes(),
      ...this.jobRegistry.routes(),
    ];
    this.server = new StandInServer(this.service());
  }

  // ---- counters -----------------------------------------------------------------------------------------------

  /** The account's registration code (GetRegistrationCode): a DEFAULT-mode verification certificate carries it as CN. */
  get registrationCode(): string {
    return this.cas.registrationCode;
  }

  /** Test hook: when set, GetRegistrationCode answers this instead, so verification certificates come out wrong. */
  get staleRegistrationCode(): string | undefined {
    return this.cas.staleRegistrationCode;
  }

  set staleRegistrationCode(code: string | undefined) {
    this.cas.staleRegistrationCode = code;
  }

  /** Calls by operation, including refused ones (for tests and benchmarks). */
  get calls(): Map<string, number> {
    return this.server.calls;
  }

  /** Every AWS call answered so far, oldest first, with the certificate it names and how it ended (see request-log.ts). */
  requests(): IotRequestRecord[] {
    return this.requestLog.list();
  }

  get throttled(): number {
    return this.throttle.throttled;
  }

  get throttledByOperation(): Map<string, number> {
    return this.throttle.throttledByOperation;
  }

  /** Answers lost after the operation took effect (see the loseResponses knob), by operation. */
  get lostResponses(): Map<string, number> {
    return this.faults.lostResponses;
  }

  /** Calls refused with ConflictingResourceUpdateException by the conflictingUpdates knob, by operation. */
  get conflicts(): Map<string, number> {
    return this.faults.conflicts;
  }

  /** Certificate registration events published so far (JITR), oldest first. */
  get events(): { topic: string; event: IotCertificateRegisteredEvent }[] {
    return this.registrationEvents.published;
  }

  /** Test hook: told of every certificate registration event as it is published. */
  get onEvent(): ((topic: string, event: IotCertificateRegisteredEvent) => void) | undefined {
    return this.registrationEvents.onEvent;
  }

  set onEvent(listener: ((topic: string, event: IotCertificateRegisteredEvent) => void) | undefined) {
    this.registrationEvents.onEvent = listener;
  }

  // ---- server -------------------------------------------------------------------------------------------------

  get endpoint(): string {
    return this.server.endpoint;
  }

  async start(port = 0): Promise<this> {
    await this.server.start(port);
    return this;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  /**
   * The stand-in's state for another account and region (made on first use, with this one's knobs less accessKeys):
   * what a call signed with that account's access key for that region sees. `place(account, region)` of the stand-in's
   * own account and region is the stand-in itself.
   */
  place(account: string, region: string): IotStandIn {
    let found = this.places.get(`${account}/${region}`);
    if (!found) {
      const { accessKeys: _keys, ...knobs } = this.knobs;
      found = new IotStandIn(knobs, { account, region, places: this.places });
    }
    return found;
  }

  /** Every (account, region) played so far, the stand-in's own first. */
  placeList(): IotStandIn[] {
    return [...this.places.values()];
  }

  /** The (account, region) a call's SigV4 credential (`Credential=<access key id>/<date>/<region>/iot/aws4_request`) names. */
  private placeOf(call: AwsCall): IotStandIn {
    const keys = this.knobs.accessKeys;
    if (!keys || Object.keys(keys).length === 0) return this;
    const scope = /Credential=([^/,\s]+)\/\d{8}\/([^/,\s]+)\/iot\/aws4_request/.exec(String(call.request.headers.authorization ?? ''));
    if (!scope) return this;
    return this.place(keys[scope[1]] ?? this.account, scope[2]);
  }

  configure(knobs: Partial<IotStandInKnobs>): void {
    this.knobs = { ...this.knobs, ...knobs };
    this.throttle.configure();
  }

  // ---- inspection and test hooks ------------------------------------------------------------------------------

  certificateArn(certificateId: string): string {
    return this.certificates.arn(certificateId);
  }

  caCertificateArn(certificateId: string): string {
    return this.cas.arn(certificateId);
  }

  /** A registered device certificate by id, with its status; undefined when AWS IoT would not know it. */
  certificate(certificateId: string): IotCertificateView | undefined {
    return this.certificates.view(certificateId);
  }

  certificateList(): IotCertificateView[] {
    return this.certificates.list();
  }

  caCertificate(certificateId: string): IotCaCertificateView | undefined {
    return this.cas.view(certificateId);
  }

  caCertificateList(): IotCaCertificateView[] {
    return this.cas.list();
  }

  thing(thingName: string): IotThingView | undefined {
    return this.things.view(thingName);
  }

  thingList(): IotThingView[] {
    return this.things.list();
  }

  thingType(thingTypeName: string): IotThingTypeView | undefined {
    return this.thingTypes.view(thingTypeName);
  }

  thingGroup(thingGroupName: string): IotThingGroupView | undefined {
    return this.thingGroups.view(thingGroupName);
  }

  /** Names of the thing groups a thing is in, in the order it was added. */
  thingGroupsOf(thingName: string): string[] {
    return this.membership.groupsOf(thingName);
  }

  /** Test hook: a thing type made in the console, say (CreateThingType does the same over the API). */
  createThingType(thingTypeName: string, options: { description?: string; searchableAttributes?: string[] } = {}): IotThingTypeView {
    return this.thingTypes.create(thingTypeName, options);
  }

  /** Test hook: deprecate a thing type (or undo it): CreateThing then refuses it for new things. */
  deprecateThingType(thingTypeName: string, deprecated = true): void {
    this.thingTypes.deprecate(thingTypeName, deprecated);
  }

  /** Test hook: a (static) thing group made in the console, say (CreateThingGroup does the same over the API). */
  createThingGroup(thingGroupName: string, options: { description?: string; attributes?: Record<string, string>; parentGroupName?: string } = {}): IotThingGroupView {
    return this.thingGroups.create(thingGroupName, options);
  }

  /** Principal ARNs attached to a thing. */
  principalsOf(thingName: string): string[] {
    return this.principals.principalsOf(thingName);
  }

  /** Thing names a principal (certificate ARN) is attached to. */
  thingsOf(principal: string): string[] {
    return this.principals.thingsOf(principal);
  }

  /** Policy names attached to a target (certificate ARN). */
  policiesAttachedTo(target: string): string[] {
    return this.attachments.attachedTo(target);
  }

  /** The default version's document of a policy, as sent. */
  policyDocument(policyName: string): string | undefined {
    return this.policies.document(policyName);
  }

  /** A policy with its default version's document and every kept version; undefined when AWS IoT would not know it. */
  policy(policyName: string): IotPolicyView | undefined {
    return this.policies.view(policyName);
  }

  policyList(): IotPolicyView[] {
    return this.policies.list();
  }

  /** Jobs created so far, oldest first, with their targets and parsed documents. */
  jobs(): IotJobView[] {
    return this.jobRegistry.views();
  }

  job(jobId: string): IotJobView | undefined {
    return this.jobRegistry.view(jobId);
  }

  /** Test hook: move a job to another status (an operator cancelling or deleting it, or the job completing). */
  setJobStatus(jobId: string, status: IotJobStatus): void {
    this.jobRegistry.setStatus(jobId, status);
  }

  /** Topic rule destination confirmation tokens confirmed so far, in order. */
  confirmedTokens(): string[] {
    return this.destinations.confirmedTokens();
  }

  /** Test hook: a topic rule destination as CreateTopicRuleDestination makes it (see TopicRuleDestinations.seed). */
  seedTopicRuleDestination(
    options: { arn?: string; confirmationUrl?: string; status?: IotTopicRuleDestinationStatus; confirmationToken?: string } = {},
  ): IotDestinationConfirmation {
    return this.destinations.seed(options);
  }

  topicRuleDestination(arn: string): IotTopicRuleDestinationView | undefined {
    return this.destinations.view(arn);
  }

  topicRuleDestinations(): IotTopicRuleDestinationView[] {
    return this.destinations.views();
  }

  /** Test hook: move a destination behind the service's back (the confirmation timing out: ERROR; an operator disabling it). */
  setTopicRuleDestinationStatus(arn: string, status: IotTopicRuleDestinationStatus, statusReason?: string): void {
    this.destinations.setStatus(arn, status, statusReason);
  }

  /** Test hook: change a certificate's status behind the service's back (an operator in the console, say). */
  setCertificateStatus(certificateId: string, status: IotCertificateStatus): void {
    this.certificates.setStatus(certificateId, status);
  }

  /** Test hook: a certificate under a registered CA that the service never issued (see Certificates.registerForeign). */
  registerForeignCertificate(
    caCertificateId: string,
    options: { certificatePem?: string; status?: IotCertificateStatus; commonName?: string; anyIssuer?: boolean; withoutCa?: boolean } = {},
  ): Promise<IotCertificateView> {
    return this.certificates.registerForeign(caCertificateId, options);
  }

  /** Test hook: set a CA's status or auto-registration behind the service's back. */
  setCaCertificateStatus(certificateId: string, status: 'ACTIVE' | 'INACTIVE', autoRegistration?: 'ENABLE' | 'DISABLE'): void {
    this.cas.setStatus(certificateId, status, autoRegistration);
  }

  /** Test hook: another AWS account in the region holds this CA in DEFAULT mode (see CaCertificates.claimInAnotherAccount). */
  claimCaInAnotherAccount(caCertificatePem: string): void {
    this.cas.claimInAnotherAccount(caCertificatePem);
  }

  /** Data plane (tools/standins/iot-data): what CreateCertificateFromCsr registers, PENDING_ACTIVATION (see Certificates.takeInFromProvider). */
  takeInProvidedCertificate(certificatePem: string): IotCertificateView {
    return this.certificates.view(this.certificates.takeInFromProvider(certificatePem).id)!;
  }

  /** Test hook: a device's first TLS connection with this certificate, playing JITR (see DeviceConnections.connect). */
  connectDevice(certificatePem: string, chainPem = ''): IotDeviceConnectResult {
    return this.devices.connect(certificatePem, chainPem);
  }

  // ---- HTTP ---------------------------------------------------------------------------------------------------

  /** How the shared server names, answers and hooks into AWS IoT calls. */
  private service(): StandInService {
    return {
      protocol: restJson,
      knobs: () => this.knobs,
      hooks: iotHooks(this, () => this.throttle.level()),
      operationOf: (request, url) => restJson.route(this.routes, request.method, url.pathname)?.route.operation ?? '',
      answer: (call) => this.placeOf(call).answerAndLog(call),
      internalError: (err) => new AwsError('InternalFailureException', String(err), 500),
    };
  }

  private answerAndLog(call: AwsCall): unknown {
    try {
      const result = this.answer(call);
      this.requestLog.record(call, result === DROP_CONNECTION ? 'dropped' : 'ok');
      return result;
    } catch (err) {
      this.requestLog.record(call, err instanceof AwsError ? err.type : 'InternalFailureException');
      throw err;
    }
  }

  private answer({ request, url, raw }: AwsCall): unknown {
    if (this.knobs.failureMode === 'http503') throw new AwsError('ServiceUnavailableException', 'Service Unavailable', 503);
    if (!String(request.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
      throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403);
    }
    const found = restJson.route(this.routes, request.method, url.pathname);
    if (!found) throw new AwsError('UnknownOperationException', `No operation at ${request.method} ${url.pathname}`, 404);
    const { route, labels } = found;
    if (!route.neverThrottled && !this.throttle.admit(route.operation)) throw new AwsError('ThrottlingException', 'Rate exceeded', 400);
    this.faults.refuseIfConflicting(route.operation);
    const params = restJson.decodeLabels(labels, invalid);
    const body = restJson.body(raw, request.headers, invalid);
    const result = route.handle({ params, query: url.searchParams, headers: request.headers, body });
    if (this.faults.loseAnswer(route.operation)) {
      if (this.knobs.lostResponseAs === 'http500') throw new AwsError('InternalFailureException', 'An unexpected error has occurred.', 500);
      return DROP_CONNECTION;
    }
    return result;
  }
}
