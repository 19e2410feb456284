import { randomBytes, randomUUID } from 'node:crypto';
import { alreadyExists, invalid, IotAccount, IotRequest, IotRoute } from './iot-api';
import { optionalObject, optionalString, page, pageSizeQuery } from './params';

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

// The states and moves follow AWS's pages: "HTTP topic rule destination overview" (ENABLED: "A destination must be
// in the ENABLED state for it to be used in a rule. You can only enable a destination that's in DISABLED status";
// DISABLED: "You can only disable a destination that's in ENABLED status"), "Managing HTTP topic rule destinations"
// (confirm with the token, then UpdateTopicRuleDestination ENABLED) and API_UpdateTopicRuleDestination (IN_PROGRESS
// "causes a new confirmation challenge to be sent"). AWS does not document which error a move it does not allow
// gets, nor the answer to an unknown ARN or token (none of these operations has ResourceNotFoundException in its
// model): the stand-in answers InvalidRequestException, and ConflictingResourceUpdateException only through the
// conflictingUpdates knob.

/**
 * HTTP topic rule destinations: CreateTopicRuleDestination (IN_PROGRESS), ConfirmTopicRuleDestination (DISABLED),
 * UpdateTopicRuleDestination (ENABLED only from DISABLED), GetTopicRuleDestination, ListTopicRuleDestinations. No
 * message is delivered: the stand-in has no rules, and a test forwards the confirmation message itself.
 */
export class TopicRuleDestinations {
  private readonly records = new Map<string, DestinationRecord>();
  /** Tokens confirmed so far, in order. */
  private readonly confirmations: string[] = [];

  constructor(private readonly account: IotAccount) {}

  /** None of these operations has ThrottlingException in its AWS model: the rate knobs leave them alone. */
  routes(): IotRoute[] {
    return [
      // A greedy label ({confirmationToken+}): the SDK keeps the slashes and encodes each segment.
      { method: 'GET', path: /^\/confirmdestination\/(.+)$/, operation: 'ConfirmTopicRuleDestination', neverThrottled: true, handle: (req) => this.confirm(req) },
      { method: 'POST', path: /^\/destinations$/, operation: 'CreateTopicRuleDestination', neverThrottled: true, handle: (req) => this.create(req) },
      { method: 'GET', path: /^\/destinations$/, operation: 'ListTopicRuleDestinations', neverThrottled: true, handle: (req) => this.list(req) },
      { method: 'PATCH', path: /^\/destinations$/, operation: 'UpdateTopicRuleDestination', neverThrottled: true, handle: (req) => this.update(req) },
      // A greedy label ({arn+}): the ARN keeps its slashes.
      { method: 'GET', path: /^\/destinations\/(.+)$/, operation: 'GetTopicRuleDestination', neverThrottled: true, handle: (req) => this.get(req) },
    ];
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
  seed(options: { arn?: string; confirmationUrl?: string; status?: IotTopicRuleDestinationStatus; confirmationToken?: string } = {}): IotDestinationConfirmation {
    const status = options.status ?? 'IN_PROGRESS';
    if (!DESTINATION_STATUSES.includes(status)) throw invalid(`status must be one of ${DESTINATION_STATUSES.join(', ')}`);
    const arn = options.arn ?? this.account.arn(`ruledestination/http/${randomUUID()}`);
    if (!/^arn:aws:iot:[a-z0-9-]+:\d{12}:ruledestination\/http\/[\w-]+$/.test(arn)) throw invalid(`${arn} is not a topic rule destination ARN`);
    const token = options.confirmationToken ?? newConfirmationToken();
    if (token.length === 0 || token.length > 2048) throw invalid('confirmationToken must be 1 to 2048 characters');
    const now = Date.now();
    const record: DestinationRecord = { arn, status, confirmationUrl: options.confirmationUrl ?? 'https://fleet-pki.example/v1/iot/events', token, created: now, lastUpdated: now };
    this.records.set(arn, record);
    return this.confirmationMessage(record);
  }

  view(arn: string): IotTopicRuleDestinationView | undefined {
    const record = this.records.get(arn);
    return record && this.destinationView(record);
  }

  views(): IotTopicRuleDestinationView[] {
    return [...this.records.values()].map((record) => this.destinationView(record));
  }

  /** Test hook: move a destination behind the service's back (the confirmation timing out: ERROR; an operator disabling it). */
  setStatus(arn: string, status: IotTopicRuleDestinationStatus, statusReason?: string): void {
    if (!DESTINATION_STATUSES.includes(status)) throw new Error(`unknown destination status ${status}`);
    const record = this.records.get(arn);
    if (!record) throw new Error(`no topic rule destination ${arn}`);
    record.status = status;
    record.statusReason = statusReason;
    record.lastUpdated = Date.now();
  }

  private confirmationMessage(record: DestinationRecord): IotDestinationConfirmation {
    return {
      arn: record.arn,
      confirmationToken: record.token,
      enableUrl: `https://iot.${this.account.region}.amazonaws.com/confirmdestination/${record.token}`,
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

  private record(arn: unknown): DestinationRecord {
    if (typeof arn !== 'string' || arn.length === 0) throw invalid('arn is required');
    const record = this.records.get(arn);
    if (!record) throw invalid(`No topic rule destination ${arn.slice(0, 300)}`);
    return record;
  }

  private create(req: IotRequest): unknown {
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
    const existing = [...this.records.values()].find((d) => d.confirmationUrl === confirmationUrl);
    if (existing) throw alreadyExists(`A topic rule destination with confirmation URL ${confirmationUrl} already exists`, existing.arn, existing.arn);
    const { arn } = this.seed({ confirmationUrl });
    return { topicRuleDestination: destinationJson(this.records.get(arn)!) };
  }

  private get(req: IotRequest): unknown {
    return { topicRuleDestination: destinationJson(this.record(req.params[0])) };
  }

  private list(req: IotRequest): unknown {
    const summaries = [...this.records.values()].map((record) => {
      const { httpUrlProperties, ...rest } = destinationJson(record);
      return { ...rest, httpUrlSummary: httpUrlProperties };
    });
    const { items, next } = page(summaries, pageSizeQuery(req.query, 'maxResults'), req.query.get('nextToken'));
    return { destinationSummaries: items, nextToken: next };
  }

  private update(req: IotRequest): unknown {
    const record = this.record(req.body.arn);
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
  private confirm(req: IotRequest): unknown {
    const token = req.params[0];
    if (token.length === 0 || token.length > 2048) throw invalid('confirmationToken must be 1 to 2048 characters');
    const record = [...this.records.values()].find((d) => d.token === token);
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
}

/** The TopicRuleDestination shape on the wire (timestamps in epoch seconds). */
function destinationJson(record: DestinationRecord): Record<string, unknown> {
  return {
    arn: record.arn,
    status: record.status,
    ...(record.statusReason ? { statusReason: record.statusReason } : {}),
    createdAt: record.created / 1000,
    lastUpdatedAt: record.lastUpdated / 1000,
    httpUrlProperties: { confirmationUrl: record.confirmationUrl },
  };
}

/** A confirmation token shaped like AWS's (a long URL-safe string; AWS's are longer still). */
function newConfirmationToken(): string {
  return `AYADe${randomBytes(48).toString('base64url')}`;
}
