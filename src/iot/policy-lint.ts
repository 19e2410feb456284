import { DomainError } from '../common/errors';
import { CONTROL_CHARS } from '../common/text';
import { globMatches } from '../common/linear-pattern';

/**
 * Least-privilege checks for AWS IoT Core policies given to devices. Pure: no Nest, no AWS.
 *
 * AWS IoT policy semantics this relies on (AWS IoT developer guide, "AWS IoT Core policies" and "policy variables"):
 * - IAM-style evaluation: nothing is allowed unless an Allow grants it, and a Deny always wins. A Deny statement can
 *   therefore only take permissions away, so only Allow statements are linted.
 * - Resources are ARNs `arn:<partition>:iot:<region>:<account>:<type>/<name>`: `client/<clientId>` for iot:Connect,
 *   `topic/<topic>` for iot:Publish, iot:Receive, iot:RetainPublish and iot:GetRetainedMessage, `topicfilter/<filter>`
 *   for iot:Subscribe, `thing/<thingName>[/<shadowName>]` for shadow and job-execution actions.
 * - Policy wildcards are `*` (any characters, `/` included) and `?` (one character). The MQTT wildcards `+` and `#`
 *   are literal in a policy: in a `topicfilter` resource they let the device subscribe with that MQTT wildcard; in a
 *   `topic` resource they match no topic name at all (a publish topic cannot contain them).
 * - `${iot:Connection.Thing.ThingName}` resolves to the thing the connecting certificate is attached to (and does not
 *   resolve, so grants nothing, when none is). `${iot:ClientId}` is whatever client id the device chose when it
 *   connected, so it binds nothing unless iot:Connect pins the client id to the thing name.
 * - A policy document is at most 2048 characters, whitespace not counted (CreatePolicy / CreatePolicyVersion).
 */

export type PolicyFindingCode =
  /** A document AWS IoT holds that does not parse as a policy (fleet audits only; templates are refused instead). */
  | 'UNPARSABLE_POLICY'
  /** An action with a wildcard (`*`, `iot:*`, `iot:Get*`, `iot:?ublish`): grants more than the data plane the device needs. */
  | 'WILDCARD_ACTION'
  /** NotAction or NotResource in an Allow: grants everything except a list, so grows with every new action or resource. */
  | 'NOT_ACTION_OR_RESOURCE'
  /** A resource that is not even confined to one resource type: `*`, `arn:aws:iot:*`, `arn:aws:iot:<region>:<account>:*`. */
  | 'WILDCARD_RESOURCE'
  /** A topic or topic filter with a wildcard (`*`, `?`, a `+` or `#` segment, an unpinned `${iot:ClientId}`) not inside the thing's own namespace. */
  | 'UNSCOPED_TOPIC'
  /** A thing resource (shadow, job executions) with a wildcard not inside the thing's own name. */
  | 'UNSCOPED_THING'
  /** iot:Connect on a client id other than `${iot:Connection.Thing.ThingName}` (`client/*`, a fixed id, `${iot:ClientId}`). */
  | 'CONNECT_ANY_CLIENT'
  /** A named action outside the device data plane (see DATA_PLANE_ACTIONS), e.g. iot:UpdateCertificate. */
  | 'NON_DATA_PLANE_ACTION';

export type PolicyFindingSeverity = 'high' | 'medium' | 'low';

export interface PolicyFinding {
  code: PolicyFindingCode;
  severity: PolicyFindingSeverity;
  /** The statement's Sid, or `#<index>` (0-based position in Statement) when it has none. */
  statement: string;
  message: string;
}

export type PolicyStringList = string | string[];
export type PolicyConditionValue = string | number | boolean | (string | number | boolean)[];

export interface IotPolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: PolicyStringList;
  NotAction?: PolicyStringList;
  Resource?: PolicyStringList;
  NotResource?: PolicyStringList;
  /** `{ "<operator>": { "<condition key>": <value or values> } }`, as in IAM. */
  Condition?: Record<string, Record<string, PolicyConditionValue>>;
}

export interface IotPolicyDocument {
  Version: '2012-10-17';
  Id?: string;
  Statement: IotPolicyStatement | IotPolicyStatement[];
}

/** The only policy language version accepted (policy variables need it). */
export const POLICY_VERSION = '2012-10-17';
/** AWS IoT's limit on a policy document: 2048 characters, whitespace excluded. */
export const POLICY_DOCUMENT_MAX_CHARACTERS = 2048;
export const POLICY_MAX_STATEMENTS = 50;

/** The thing-bound policy variable: the name of the thing the connecting certificate is attached to. */
export const THING_NAME_VARIABLE = '${iot:Connection.Thing.ThingName}';
/** The client id the device chose: thing-bound only when iot:Connect pins it to THING_NAME_VARIABLE. */
export const CLIENT_ID_VARIABLE = '${iot:ClientId}';

/** A refused policy document: not JSON, not the AWS IoT policy grammar, or over the size limit. */
export class PolicyDocumentError extends DomainError {
  constructor(
    message: string,
    /** Where in the document, e.g. `Statement[1].Action`; `$` for the whole document. */
    readonly path: string,
  ) {
    super('INVALID_POLICY_DOCUMENT', 422, message, { path });
    this.name = 'PolicyDocumentError';
  }
}

type ResourceKind = 'client' | 'topic' | 'topicfilter' | 'thing';

/**
 * The device data plane: what a fleet device needs to connect, exchange MQTT messages, use its shadow and run jobs
 * (the rotation feature delivers renewal jobs). Anything else named in an Allow is NON_DATA_PLANE_ACTION.
 * Deliberately left out: iot:DeleteConnection (disconnects clients), iot:ListRetainedMessages and
 * iot:ListNamedShadowsForThing (resource `*` only: account-wide listings), iot:AssumeRoleWithCertificate (AWS
 * credentials through the credentials provider: a wider grant that an admin should accept explicitly).
 * The job-execution actions are listed under both prefixes AWS has documented (`iot:` and `iotjobsdata:`).
 */
const DATA_PLANE_ACTIONS: Record<string, { kind: ResourceKind; writes: boolean }> = {
  'iot:connect': { kind: 'client', writes: false },
  'iot:publish': { kind: 'topic', writes: true },
  'iot:retainpublish': { kind: 'topic', writes: true },
  'iot:receive': { kind: 'topic', writes: false },
  'iot:getretainedmessage': { kind: 'topic', writes: false },
  'iot:subscribe': { kind: 'topicfilter', writes: false },
  'iot:getthingshadow': { kind: 'thing', writes: false },
  'iot:updatethingshadow': { kind: 'thing', writes: true },
  'iot:deletethingshadow': { kind: 'thing', writes: true },
  'iot:describejobexecution': { kind: 'thing', writes: false },
  'iot:getpendingjobexecutions': { kind: 'thing', writes: false },
  'iot:startnextpendingjobexecution': { kind: 'thing', writes: true },
  'iot:updatejobexecution': { kind: 'thing', writes: true },
  'iotjobsdata:describejobexecution': { kind: 'thing', writes: false },
  'iotjobsdata:getpendingjobexecutions': { kind: 'thing', writes: false },
  'iotjobsdata:startnextpendingjobexecution': { kind: 'thing', writes: true },
  'iotjobsdata:updatejobexecution': { kind: 'thing', writes: true },
};

/** Verbs of actions that only read; any other action outside the data plane is high severity. */
const READ_ONLY_VERB = /^(get|list|describe|search|validate)/i;

const ARN_PREFIX = 'arn:aws:iot:*:*:';

/** Builds the default template's document for a partition, region and account (defaults: aws, any, any). */
export function defaultPolicyDocument(options: { partition?: string; region?: string; accountId?: string } = {}): IotPolicyDocument {
  const prefix = options.partition || options.region || options.accountId ? `arn:${options.partition ?? 'aws'}:iot:${options.region ?? '*'}:${options.accountId ?? '*'}:` : ARN_PREFIX;
  const thing = THING_NAME_VARIABLE;
  const namespaces = [`dt/${thing}/*`, `cmd/${thing}/*`, `$aws/things/${thing}/jobs/*`];
  return {
    Version: POLICY_VERSION,
    Statement: [
      {
        Sid: 'ConnectAsOwnThing',
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: `${prefix}client/${thing}`,
        Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
      },
      {
        Sid: 'OwnTopics',
        Effect: 'Allow',
        Action: ['iot:Publish', 'iot:Receive'],
        Resource: namespaces.map((namespace) => `${prefix}topic/${namespace}`),
      },
      {
        Sid: 'OwnTopicFilters',
        Effect: 'Allow',
        Action: 'iot:Subscribe',
        Resource: namespaces.map((namespace) => `${prefix}topicfilter/${namespace}`),
      },
    ],
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * The policy every fleet device gets unless an operator says otherwise: connect only as its own thing (and only
 * while its certificate is attached to it); publish and receive under `dt/<thing>/`, `cmd/<thing>/` and its own
 * jobs topics `$aws/things/<thing>/jobs/` (renewal jobs from rotation campaigns); subscribe to the same with topic
 * filters. Region and account are `*` so one document works in any account; lintIotPolicy finds nothing in it.
 */
export const DEFAULT_POLICY_TEMPLATE: { readonly name: 'fleet-default'; readonly document: IotPolicyDocument } = deepFreeze({
  name: 'fleet-default',
  document: defaultPolicyDocument(),
});

// ---- parsing ------------------------------------------------------------------------------------------------------

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const DOCUMENT_KEYS = new Set(['Version', 'Id', 'Statement']);
const ACTION_PATTERN = /^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(message: string, path: string): never {
  throw new PolicyDocumentError(path === '$' ? `policy document: ${message}` : `policy document ${path}: ${message}`, path);
}

/** Characters AWS counts toward the 2048 limit: the JSON text without whitespace. */
function countedCharacters(text: string): number {
  return text.replace(/\s/g, '').length;
}

function stringList(value: unknown, path: string, check: (item: string, itemPath: string) => void): PolicyStringList {
  if (typeof value === 'string') {
    check(value, path);
    return value;
  }
  if (!Array.isArray(value)) fail('must be a string or an array of strings', path);
  if (value.length === 0) fail('must not be an empty array', path);
  return value.map((item, i) => {
    if (typeof item !== 'string') fail('must be a string', `${path}[${i}]`);
    check(item, `${path}[${i}]`);
    return item;
  });
}

function checkAction(action: string, path: string): void {
  if (!ACTION_PATTERN.test(action)) fail(`"${action}" is not an action (service:Action, e.g. iot:Publish)`, path);
}

function checkResource(resource: string, path: string): void {
  if (resource.length === 0) fail('must not be empty', path);
  if (resource.length > 2048) fail('is longer than 2048 characters', path);
  if (CONTROL_CHARS.test(resource) || /\s/.test(resource)) fail('must not contain whitespace or control characters', path);
  if (resource !== '*' && !resource.startsWith('arn:')) fail(`"${resource}" is not an ARN (arn:aws:iot:<region>:<account>:<type>/<name>) or "*"`, path);
}

function conditionBlock(value: unknown, path: string): Record<string, Record<string, PolicyConditionValue>> {
  if (!isPlainObject(value)) fail('must be an object of condition operators', path);
  const out: Record<string, Record<string, PolicyConditionValue>> = {};
  for (const [operator, keys] of Object.entries(value)) {
    const operatorPath = `${path}.${operator}`;
    if (!/^[A-Za-z0-9:]+$/.test(operator)) fail('is not a condition operator', operatorPath);
    if (!isPlainObject(keys) || Object.keys(keys).length === 0) fail('must be an object of condition keys and values', operatorPath);
    out[operator] = {};
    for (const [key, raw] of Object.entries(keys)) {
      const keyPath = `${operatorPath}["${key}"]`;
      const scalar = (item: unknown) => typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean';
      if (!(scalar(raw) || (Array.isArray(raw) && raw.length > 0 && raw.every(scalar)))) {
        fail('must be a string, number or boolean, or a non-empty array of them', keyPath);
      }
      out[operator][key] = (Array.isArray(raw) ? [...raw] : raw) as PolicyConditionValue;
    }
  }
  return out;
}

function parseStatement(raw: unknown, path: string): IotPolicyStatement {
  if (!isPlainObject(raw)) fail('must be an object', path);
  for (const key of Object.keys(raw)) {
    if (!STATEMENT_KEYS.has(key)) {
      const hint = key === 'Principal' || key === 'NotPrincipal' ? ' (AWS IoT policies name no principal: they apply to what they are attached to)' : '';
      fail(`unknown element "${key}"${hint}; allowed: ${[...STATEMENT_KEYS].join(', ')}`, path);
    }
  }
  const statement: Partial<IotPolicyStatement> = {};
  if (raw.Sid !== undefined) {
    if (typeof raw.Sid !== 'string' || raw.Sid.length === 0 || raw.Sid.length > 128 || CONTROL_CHARS.test(raw.Sid)) {
      fail('must be a string of 1 to 128 characters', `${path}.Sid`);
    }
    statement.Sid = raw.Sid;
  }
  if (raw.Effect !== 'Allow' && raw.Effect !== 'Deny') fail(`must be "Allow" or "Deny", not ${JSON.stringify(raw.Effect) ?? 'missing'}`, `${path}.Effect`);
  statement.Effect = raw.Effect;

  if (raw.Action !== undefined && raw.NotAction !== undefined) fail('has both Action and NotAction; give one', path);
  if (raw.Action === undefined && raw.NotAction === undefined) fail('needs an Action (or NotAction)', path);
  if (raw.Action !== undefined) statement.Action = stringList(raw.Action, `${path}.Action`, checkAction);
  if (raw.NotAction !== undefined) statement.NotAction = stringList(raw.NotAction, `${path}.NotAction`, checkAction);

  if (raw.Resource !== undefined && raw.NotResource !== undefined) fail('has both Resource and NotResource; give one', path);
  if (raw.Resource === undefined && raw.NotResource === undefined) fail('needs a Resource (or NotResource)', path);
  if (raw.Resource !== undefined) statement.Resource = stringList(raw.Resource, `${path}.Resource`, checkResource);
  if (raw.NotResource !== undefined) statement.NotResource = stringList(raw.NotResource, `${path}.NotResource`, checkResource);

  if (raw.Condition !== undefined) statement.Condition = conditionBlock(raw.Condition, `${path}.Condition`);
  return statement as IotPolicyStatement;
}

/**
 * Parses and validates an AWS IoT policy document, given as JSON text or as an object: Version "2012-10-17",
 * Statement an object or an array of 1 to 50, each with Effect Allow|Deny, one of Action/NotAction and one of
 * Resource/NotResource (a string or a non-empty array of strings), an optional Sid and Condition; no other elements;
 * at most 2048 characters without whitespace. Returns a copy (the shape as given: strings stay strings, arrays
 * arrays). Throws PolicyDocumentError naming the offending element.
 */
export function parsePolicyDocument(text: string | object): IotPolicyDocument {
  let raw: unknown;
  let serialized: string;
  if (typeof text === 'string') {
    if (text.trim().length === 0) fail('is empty', '$');
    // Refuse absurd input before parsing it: the limit counts non-whitespace characters, so allow generous spacing.
    if (text.length > 64 * POLICY_DOCUMENT_MAX_CHARACTERS) fail(`is larger than AWS IoT's limit of ${POLICY_DOCUMENT_MAX_CHARACTERS} characters`, '$');
    try {
      raw = JSON.parse(text);
    } catch (err) {
      fail(`is not valid JSON (${(err as Error).message})`, '$');
    }
    serialized = text;
  } else {
    raw = text;
    try {
      serialized = JSON.stringify(text) ?? '';
    } catch {
      fail('cannot be serialized as JSON', '$');
    }
  }
  if (!isPlainObject(raw)) fail('must be a JSON object', '$');
  for (const key of Object.keys(raw)) {
    if (!DOCUMENT_KEYS.has(key)) fail(`unknown element "${key}"; allowed: ${[...DOCUMENT_KEYS].join(', ')}`, '$');
  }
  if (raw.Version === undefined) fail(`needs "Version": "${POLICY_VERSION}"`, 'Version');
  if (raw.Version !== POLICY_VERSION) fail(`must be "${POLICY_VERSION}", not ${JSON.stringify(raw.Version)}`, 'Version');
  const document: Partial<IotPolicyDocument> = { Version: POLICY_VERSION };
  if (raw.Id !== undefined) {
    if (typeof raw.Id !== 'string') fail('must be a string', 'Id');
    document.Id = raw.Id;
  }
  if (raw.Statement === undefined) fail('is required', 'Statement');
  if (Array.isArray(raw.Statement) && raw.Statement.length > POLICY_MAX_STATEMENTS) {
    fail(`has ${raw.Statement.length} statements; at most ${POLICY_MAX_STATEMENTS} are accepted`, 'Statement');
  }
  const size = countedCharacters(serialized);
  if (size > POLICY_DOCUMENT_MAX_CHARACTERS) {
    fail(`has ${size} characters (whitespace excluded); AWS IoT accepts at most ${POLICY_DOCUMENT_MAX_CHARACTERS}`, '$');
  }
  if (Array.isArray(raw.Statement)) {
    if (raw.Statement.length === 0) fail('must hold at least one statement', 'Statement');
    document.Statement = raw.Statement.map((statement, i) => parseStatement(statement, `Statement[${i}]`));
  } else if (isPlainObject(raw.Statement)) {
    document.Statement = parseStatement(raw.Statement, 'Statement');
  } else {
    fail('must be a statement object or an array of statements', 'Statement');
  }
  const sids = new Set<string>();
  for (const statement of statementsOf(document as IotPolicyDocument)) {
    if (statement.Sid === undefined) continue;
    if (sids.has(statement.Sid)) fail(`Sid "${statement.Sid}" is used twice; Sids must be unique`, 'Statement');
    sids.add(statement.Sid);
  }
  return document as IotPolicyDocument;
}

// ---- linting ------------------------------------------------------------------------------------------------------

function statementsOf(document: IotPolicyDocument): IotPolicyStatement[] {
  return Array.isArray(document.Statement) ? document.Statement : [document.Statement];
}

function list(value: PolicyStringList | undefined): string[] {
  return value === undefined ? [] : typeof value === 'string' ? [value] : value;
}

/** `$(*)`, `$(?)` and `$($)` stand for the literal characters; they are not wildcards. */
function withoutEscapes(text: string): string {
  return text.replace(/\$\([*?$]\)/g, '');
}

function hasPolicyWildcard(text: string): boolean {
  return /[*?]/.test(withoutEscapes(text));
}

/**
 * IAM-style glob (`*`, `?`), case-insensitive as IAM action names are. Never a RegExp: `iot:***…x` would backtrack
 * for minutes (see common/linear-pattern.ts).
 */
function actionMatches(pattern: string, value: string): boolean {
  return globMatches(pattern.toLowerCase(), value.toLowerCase());
}

/** The data-plane actions (lowercase keys of DATA_PLANE_ACTIONS) a list of action patterns grants. */
function coveredDataPlane(actions: string[]): string[] {
  return Object.keys(DATA_PLANE_ACTIONS).filter((name) => actions.some((pattern) => actionMatches(pattern, name)));
}

type ParsedResource = { scope: 'all' } | { scope: 'typed'; type: string; name: string } | { scope: 'other' };

/**
 * Splits an IoT resource ARN. `all`: the resource is not confined to one resource type (`*`, a wildcard in the
 * partition, service or resource type, or a truncated ARN with a wildcard such as `arn:aws:iot:*`). Wildcards in the
 * region and account alone are fine. `other`: another service, or not an IoT resource ARN.
 */
function parseResource(resource: string): ParsedResource {
  if (resource === '*' || /^[*?]/.test(resource)) return { scope: 'all' };
  const parts = resource.split(':');
  if (parts[0] !== 'arn') return { scope: 'other' };
  if (parts.length < 6) return hasPolicyWildcard(resource) ? { scope: 'all' } : { scope: 'other' };
  const [, partition, service] = parts;
  if (hasPolicyWildcard(partition) || hasPolicyWildcard(service)) return { scope: 'all' };
  if (service !== 'iot') return { scope: 'other' };
  const rest = parts.slice(5).join(':');
  const slash = rest.indexOf('/');
  const type = slash < 0 ? rest : rest.slice(0, slash);
  if (hasPolicyWildcard(type)) return { scope: 'all' };
  if (slash < 0) return { scope: 'other' };
  return { scope: 'typed', type, name: rest.slice(slash + 1) };
}

/**
 * Whether a topic, topic filter or thing name stays inside the connecting thing's own namespace. What counts as
 * scoped: some path segment is exactly `${iot:Connection.Thing.ThingName}` (or `${iot:ClientId}` when iot:Connect
 * pins the client id to the thing name), and no segment before it holds a wildcard. A wildcard before the thing's
 * segment, or glued to it (`dt/${…ThingName}*`, which matches `dt/sensor-12` for thing `sensor-1`), reaches other
 * devices. Wildcard segments: any `*` or `?`, a whole `+` or `#` segment, and an unpinned `${iot:ClientId}` (the
 * device picks it). Names without a wildcard are not judged here.
 */
function unscoped(name: string, clientIdPinned: boolean): { wildcard: boolean; scoped: boolean; mqttOnly: boolean } {
  const segments = name.split('/');
  const isAnchor = (segment: string) => segment === THING_NAME_VARIABLE || (clientIdPinned && segment === CLIENT_ID_VARIABLE);
  const policyWildcard = (segment: string) => hasPolicyWildcard(segment) || (!clientIdPinned && segment.includes(CLIENT_ID_VARIABLE));
  const mqttWildcard = (segment: string) => segment === '+' || segment === '#';
  const wildcardAt = segments.map((segment) => policyWildcard(segment) || mqttWildcard(segment));
  const wildcard = wildcardAt.some(Boolean);
  const anchor = segments.findIndex(isAnchor);
  const scoped = anchor >= 0 && !wildcardAt.slice(0, anchor).some(Boolean);
  const mqttOnly = wildcard && !segments.some(policyWildcard);
  return { wildcard, scoped, mqttOnly };
}

const SEVERITY_RANK: Record<PolicyFindingSeverity, number> = { low: 0, medium: 1, high: 2 };
const CODE_ORDER: PolicyFindingCode[] = [
  'NOT_ACTION_OR_RESOURCE',
  'WILDCARD_ACTION',
  'NON_DATA_PLANE_ACTION',
  'WILDCARD_RESOURCE',
  'CONNECT_ANY_CLIENT',
  'UNSCOPED_TOPIC',
  'UNSCOPED_THING',
];

/** Collects offenders per code for one statement, then renders one finding per code. */
class StatementFindings {
  private readonly offenders = new Map<PolicyFindingCode, { severity: PolicyFindingSeverity; items: string[] }>();

  add(code: PolicyFindingCode, severity: PolicyFindingSeverity, item: string): void {
    const entry = this.offenders.get(code) ?? { severity, items: [] };
    if (SEVERITY_RANK[severity] > SEVERITY_RANK[entry.severity]) entry.severity = severity;
    if (!entry.items.includes(item)) entry.items.push(item);
    this.offenders.set(code, entry);
  }

  render(statement: string): PolicyFinding[] {
    return CODE_ORDER.filter((code) => this.offenders.has(code)).map((code) => {
      const { severity, items } = this.offenders.get(code)!;
      return { code, severity, statement, message: MESSAGES[code](items.join(', ')) };
    });
  }
}

const MESSAGES: Record<PolicyFindingCode, (items: string) => string> = {
  UNPARSABLE_POLICY: (items) => `the document is not a valid AWS IoT policy: ${items}`,
  NOT_ACTION_OR_RESOURCE: (items) => `Allow with ${items} grants everything except what is listed, including actions and resources added later; list what is allowed instead`,
  WILDCARD_ACTION: (items) => `action ${items} is a wildcard: it grants control-plane actions a device never needs; name the data-plane actions instead`,
  NON_DATA_PLANE_ACTION: (items) => `${items} is outside the device data plane (connect, publish, subscribe, receive, shadow, job executions)`,
  WILDCARD_RESOURCE: (items) => `resource ${items} is not confined to a resource type: it covers every client, topic and thing in the account`,
  CONNECT_ANY_CLIENT: (items) =>
    `iot:Connect on ${items} lets a certificate connect with a client id other than its own thing name (and so take over or impersonate other devices); use client/${THING_NAME_VARIABLE}`,
  UNSCOPED_TOPIC: (items) =>
    `topic resource ${items} has a wildcard outside the thing's own namespace: put a ${THING_NAME_VARIABLE} segment before any wildcard (note: + and # are literal in policies; in a topicfilter they allow MQTT wildcard subscriptions, in a topic they match nothing)`,
  UNSCOPED_THING: (items) => `thing resource ${items} reaches other things' shadows or job executions; use thing/${THING_NAME_VARIABLE}`,
};

/**
 * Whether every grant of iot:Connect in the document pins the client id to the thing name: at least one Allow
 * covers iot:Connect, and each one that does names only `client/${iot:Connection.Thing.ThingName}` resources.
 * Only then does `${iot:ClientId}` stand for the thing name.
 */
function connectPinned(statements: IotPolicyStatement[]): boolean {
  let grants = 0;
  for (const statement of statements) {
    if (statement.Effect !== 'Allow') continue;
    const coversConnect = statement.NotAction !== undefined ? !list(statement.NotAction).some((pattern) => actionMatches(pattern, 'iot:connect')) : list(statement.Action).some((pattern) => actionMatches(pattern, 'iot:connect'));
    if (!coversConnect) continue;
    if (statement.NotAction !== undefined || statement.NotResource !== undefined) return false;
    grants++;
    for (const resource of list(statement.Resource)) {
      const parsed = parseResource(resource);
      if (parsed.scope === 'all') return false;
      if (parsed.scope === 'typed' && parsed.type === 'client' && parsed.name !== THING_NAME_VARIABLE) return false;
    }
  }
  return grants > 0;
}

/**
 * Lints an AWS IoT policy for least privilege (the document is validated with parsePolicyDocument first, and a
 * PolicyDocumentError thrown when it is not a policy). Only Allow statements are examined: a Deny never loosens
 * anything. One finding per code per statement, naming every offending action or resource; in statement order.
 *
 * - NOT_ACTION_OR_RESOURCE (high): NotAction or NotResource in an Allow. Such a statement gets no other action or
 *   resource finding for what the Not-element replaces.
 * - WILDCARD_ACTION (high): any action containing `*` or `?`. Wildcard actions are not also NON_DATA_PLANE_ACTION.
 * - NON_DATA_PLANE_ACTION: a named action outside DATA_PLANE_ACTIONS; medium for read-only verbs
 *   (Get/List/Describe/Search/Validate), high otherwise (iot:UpdateCertificate, iot:AttachPolicy, iam:PassRole…).
 * - Resource findings are judged for the data-plane actions the statement grants (wildcards expanded), against the
 *   resources of the matching type (client for Connect, topic for Publish/Receive/RetainPublish/GetRetainedMessage,
 *   topicfilter for Subscribe, thing for shadows and job executions):
 *   - WILDCARD_RESOURCE (high): `*` or an ARN not confined to a resource type. Takes precedence: such a resource gets
 *     no CONNECT_ANY_CLIENT / UNSCOPED_* finding as well.
 *   - CONNECT_ANY_CLIENT (high): a client resource other than exactly `client/${iot:Connection.Thing.ThingName}`.
 *   - UNSCOPED_TOPIC: a topic/topicfilter with a wildcard not inside the thing's namespace (see `unscoped`); high
 *     when the statement lets the device publish there, medium otherwise, low when the only wildcards are `+`/`#`
 *     segments in a topic resource (literal there: they match no topic, but show a misunderstanding).
 *   - UNSCOPED_THING: a thing resource with a wildcard not inside the thing's own name; high when shadows can be
 *     written or job executions updated, medium otherwise.
 * Conditions are not evaluated: they can only narrow a grant, so a finding on a conditioned statement may be
 * accepted by an admin (acceptFindings) when the condition makes it safe.
 */
export function lintIotPolicy(document: unknown): PolicyFinding[] {
  if (typeof document !== 'string' && (typeof document !== 'object' || document === null)) {
    throw new PolicyDocumentError('policy document: must be a JSON object or JSON text', '$');
  }
  const policy = parsePolicyDocument(document);
  const statements = statementsOf(policy);
  const pinned = connectPinned(statements);
  const findings: PolicyFinding[] = [];

  statements.forEach((statement, index) => {
    if (statement.Effect !== 'Allow') return;
    const label = statement.Sid ?? `#${index}`;
    const out = new StatementFindings();

    if (statement.NotAction !== undefined) out.add('NOT_ACTION_OR_RESOURCE', 'high', `NotAction ${JSON.stringify(statement.NotAction)}`);
    if (statement.NotResource !== undefined) out.add('NOT_ACTION_OR_RESOURCE', 'high', `NotResource ${JSON.stringify(statement.NotResource)}`);

    const actions = list(statement.Action);
    for (const action of actions) {
      if (hasPolicyWildcard(action)) {
        out.add('WILDCARD_ACTION', 'high', action);
      } else if (!DATA_PLANE_ACTIONS[action.toLowerCase()]) {
        const verb = action.slice(action.indexOf(':') + 1);
        out.add('NON_DATA_PLANE_ACTION', READ_ONLY_VERB.test(verb) ? 'medium' : 'high', action);
      }
    }

    const covered = coveredDataPlane(actions);
    if (covered.length > 0 && statement.Resource !== undefined) {
      const kinds = new Set(covered.map((name) => DATA_PLANE_ACTIONS[name].kind));
      const writes = (kind: ResourceKind) => covered.some((name) => DATA_PLANE_ACTIONS[name].kind === kind && DATA_PLANE_ACTIONS[name].writes);
      for (const resource of list(statement.Resource)) {
        const parsed = parseResource(resource);
        if (parsed.scope === 'all') {
          out.add('WILDCARD_RESOURCE', 'high', resource);
          continue;
        }
        if (parsed.scope !== 'typed' || !kinds.has(parsed.type as ResourceKind)) continue;
        const kind = parsed.type as ResourceKind;
        if (kind === 'client') {
          if (parsed.name !== THING_NAME_VARIABLE) out.add('CONNECT_ANY_CLIENT', 'high', resource);
          continue;
        }
        const { wildcard, scoped, mqttOnly } = unscoped(parsed.name, pinned);
        if (!wildcard || scoped) continue;
        if (kind === 'thing') {
          out.add('UNSCOPED_THING', writes('thing') ? 'high' : 'medium', resource);
        } else if (kind === 'topic' && mqttOnly) {
          out.add('UNSCOPED_TOPIC', 'low', resource);
        } else {
          out.add('UNSCOPED_TOPIC', kind === 'topic' && writes('topic') ? 'high' : 'medium', resource);
        }
      }
    }
    findings.push(...out.render(label));
  });
  return findings;
}
