/**
 * A small evaluator of IAM identity policies, enough to check docs/iam/*.json against the calls the code makes
 * (test/e2e/iam-policy.e2e.ts). It follows the IAM policy evaluation logic for identity policies alone: an
 * explicit Deny wins, otherwise an Allow whose Action, Resource and Condition all match, otherwise an implicit
 * deny. Anything it does not model (NotAction, NotResource, unknown condition operators, policy variables)
 * is refused rather than guessed.
 * IAM JSON policy reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
 * Condition operators: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
 */

export type ConditionBlock = Record<string, Record<string, string | string[] | boolean | number>>;

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: ConditionBlock;
}

export interface PolicyDocument {
  Version: string;
  Statement: PolicyStatement[];
}

/** A request's condition keys: single-valued keys are strings, multivalued ones (aws:TagKeys) arrays. */
export type RequestContext = Record<string, string | string[]>;

export interface AuthorizationRequest {
  action: string;
  /** The resource ARN IAM authorizes the call against, or "*" for an action without a resource type. */
  resource: string;
  context: RequestContext;
}

export type Decision = { decision: 'allow'; statement: string } | { decision: 'explicit-deny'; statement: string } | { decision: 'implicit-deny' };

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'Resource', 'Condition']);
const STRING_OPERATORS = ['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike', 'ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike'];
const NUMERIC_OPERATORS = ['NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals'];
const KNOWN_OPERATORS = new Set([...STRING_OPERATORS, ...NUMERIC_OPERATORS, 'Bool', 'Null']);

export function asList<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

/** IAM wildcards: `*` any run of characters, `?` one character. Actions compare case-insensitively, ARNs not. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const regex = new RegExp(`^${pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('')}$`, ignoreCase ? 'is' : 's');
  return regex.test(value);
}

function parseOperator(raw: string): { set?: 'ForAllValues' | 'ForAnyValue'; base: string; ifExists: boolean } {
  let rest = raw;
  let set: 'ForAllValues' | 'ForAnyValue' | undefined;
  for (const prefix of ['ForAllValues', 'ForAnyValue'] as const) {
    if (rest.startsWith(`${prefix}:`)) {
      set = prefix;
      rest = rest.slice(prefix.length + 1);
    }
  }
  const ifExists = rest.endsWith('IfExists');
  if (ifExists) rest = rest.slice(0, -'IfExists'.length);
  return { set, base: rest, ifExists };
}

/** Problems that make a document invalid or outside what this evaluator models; empty when it is fine. */
export function policyProblems(doc: unknown, kind: 'identity' | 'trust' = 'identity'): string[] {
  const problems: string[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return ['not a JSON object'];
  const { Version, Statement, ...rest } = doc as Record<string, unknown>;
  if (Object.keys(rest).some((k) => k !== 'Id')) problems.push(`unknown top-level keys: ${Object.keys(rest).join(', ')}`);
  if (Version !== '2012-10-17') problems.push('Version must be "2012-10-17"');
  if (!Array.isArray(Statement) || Statement.length === 0) return [...problems, 'Statement must be a non-empty array'];
  const sids = new Set<string>();
  Statement.forEach((raw: unknown, i) => {
    const where = `Statement[${i}]`;
    if (typeof raw !== 'object' || raw === null) return problems.push(`${where} is not an object`);
    const s = raw as Record<string, unknown>;
    const allowed = kind === 'trust' ? new Set(['Sid', 'Effect', 'Principal', 'Action', 'Condition']) : STATEMENT_KEYS;
    for (const key of Object.keys(s)) if (!allowed.has(key)) problems.push(`${where} has ${key}, which this ${kind} policy check does not allow`);
    if (s.Sid !== undefined) {
      if (typeof s.Sid !== 'string' || !/^[A-Za-z0-9]+$/.test(s.Sid)) problems.push(`${where}.Sid must be alphanumeric`);
      else if (sids.has(s.Sid)) problems.push(`${where}.Sid ${s.Sid} is not unique`);
      else sids.add(s.Sid);
    }
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') problems.push(`${where}.Effect must be Allow or Deny`);
    const actions = s.Action;
    if (!(typeof actions === 'string' || (Array.isArray(actions) && actions.length > 0 && actions.every((a) => typeof a === 'string')))) {
      problems.push(`${where}.Action must be a string or a non-empty array of strings`);
    } else {
      for (const a of asList(actions as string | string[])) if (!/^[a-z0-9-]+:[A-Za-z0-9*?]+$/.test(a)) problems.push(`${where}.Action "${a}" is not service:Action`);
    }
    if (kind === 'identity') {
      const resources = s.Resource;
      if (!(typeof resources === 'string' || (Array.isArray(resources) && resources.length > 0 && resources.every((r) => typeof r === 'string')))) {
        problems.push(`${where}.Resource must be a string or a non-empty array of strings`);
      } else {
        for (const r of asList(resources as string | string[])) {
          if (r !== '*' && !/^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:.+$/.test(r)) problems.push(`${where}.Resource "${r}" is neither "*" nor an ARN`);
          if (r.includes('${')) problems.push(`${where}.Resource "${r}" uses a policy variable, which this check does not evaluate`);
        }
      }
    } else if (typeof s.Principal !== 'object' || s.Principal === null) {
      problems.push(`${where}.Principal must be an object`);
    }
    if (s.Condition !== undefined) {
      if (typeof s.Condition !== 'object' || s.Condition === null) problems.push(`${where}.Condition must be an object`);
      else {
        for (const [operator, block] of Object.entries(s.Condition as Record<string, unknown>)) {
          if (!KNOWN_OPERATORS.has(parseOperator(operator).base)) problems.push(`${where}.Condition operator ${operator} is not one this check evaluates`);
          if (typeof block !== 'object' || block === null || Object.keys(block).length === 0) problems.push(`${where}.Condition.${operator} must name at least one key`);
        }
      }
    }
  });
  return problems;
}

function compare(base: string, expected: string, actual: string): boolean {
  switch (base) {
    case 'StringEquals':
    case 'ArnEquals':
      return actual === expected;
    case 'StringNotEquals':
    case 'ArnNotEquals':
      return actual !== expected;
    case 'StringEqualsIgnoreCase':
      return actual.toLowerCase() === expected.toLowerCase();
    case 'StringNotEqualsIgnoreCase':
      return actual.toLowerCase() !== expected.toLowerCase();
    case 'StringLike':
    case 'ArnLike':
      return wildcardMatch(expected, actual);
    case 'StringNotLike':
    case 'ArnNotLike':
      return !wildcardMatch(expected, actual);
    case 'Bool':
      return actual.toLowerCase() === expected.toLowerCase();
    case 'NumericEquals':
      return Number(actual) === Number(expected);
    case 'NumericNotEquals':
      return Number(actual) !== Number(expected);
    case 'NumericLessThan':
      return Number(actual) < Number(expected);
    case 'NumericLessThanEquals':
      return Number(actual) <= Number(expected);
    case 'NumericGreaterThan':
      return Number(actual) > Number(expected);
    case 'NumericGreaterThanEquals':
      return Number(actual) >= Number(expected);
    default:
      throw new Error(`condition operator ${base} is not modelled`);
  }
}

const NEGATED = new Set(['StringNotEquals', 'StringNotEqualsIgnoreCase', 'StringNotLike', 'ArnNotEquals', 'ArnNotLike', 'NumericNotEquals']);

/** One operator/key pair: values listed in the policy are ORed (for negated operators, NORed). */
function keyHolds(operator: string, key: string, expectedRaw: string | string[] | boolean | number, context: RequestContext): boolean {
  const { set, base, ifExists } = parseOperator(operator);
  const expected = asList(expectedRaw as string | string[]).map(String);
  const present = Object.prototype.hasOwnProperty.call(context, key);
  if (base === 'Null') return expected.some((e) => (e === 'true') === !present);
  if (!present) {
    if (ifExists || set === 'ForAllValues') return true;
    return NEGATED.has(base) && set === undefined;
  }
  const actual = context[key];
  const negated = NEGATED.has(base);
  const matchOne = (value: string) => (negated ? expected.every((e) => compare(base, e, value)) : expected.some((e) => compare(base, e, value)));
  if (set === 'ForAllValues') return asList(actual).every(matchOne);
  if (set === 'ForAnyValue') return asList(actual).some(matchOne);
  if (Array.isArray(actual)) throw new Error(`${key} is multivalued: use ForAllValues or ForAnyValue with ${base}`);
  return matchOne(actual);
}

/** Every operator and every key of a Condition block must hold (AND); an absent block holds. */
export function conditionsHold(condition: ConditionBlock | undefined, context: RequestContext): boolean {
  if (!condition) return true;
  return Object.entries(condition).every(([operator, block]) => Object.entries(block).every(([key, expected]) => keyHolds(operator, key, expected, context)));
}

function statementApplies(s: PolicyStatement, request: AuthorizationRequest): boolean {
  return (
    asList(s.Action).some((a) => wildcardMatch(a, request.action, true)) &&
    asList(s.Resource).some((r) => wildcardMatch(r, request.resource)) &&
    conditionsHold(s.Condition, request.context)
  );
}

export function evaluate(policy: PolicyDocument, request: AuthorizationRequest): Decision {
  const deny = policy.Statement.find((s) => s.Effect === 'Deny' && statementApplies(s, request));
  if (deny) return { decision: 'explicit-deny', statement: deny.Sid ?? '(no Sid)' };
  const allow = policy.Statement.find((s) => s.Effect === 'Allow' && statementApplies(s, request));
  return allow ? { decision: 'allow', statement: allow.Sid ?? '(no Sid)' } : { decision: 'implicit-deny' };
}

/** Whether a condition key template from AWS's tables (e.g. aws:RequestTag/${TagKey}) covers a concrete key. */
export function conditionKeyCovers(template: string, key: string): boolean {
  const regex = new RegExp(`^${template.split(/\$\{[^}]+\}/).map((part) => part.replace(/[\\^$.|+*?()[\]{}]/g, '\\$&')).join('.+')}$`, 'i');
  return regex.test(key);
}

/** An ARN pattern from the Service Authorization Reference (arn:${Partition}:iot:…) filled with sample values. */
export function fillArnPattern(pattern: string, values: Record<string, string>): string {
  return pattern.replace(/\$\{([A-Za-z]+)\}/g, (_, name: string) => {
    if (!(name in values)) throw new Error(`no sample value for \${${name}} in ${pattern}`);
    return values[name];
  });
}

/** The ARN pattern as a regular expression: each ${Placeholder} one or more characters without ':'. */
export function arnPatternRegex(pattern: string): RegExp {
  return new RegExp(`^${pattern.split(/\$\{[^}]+\}/).map((part) => part.replace(/[\\^$.|+*?()[\]{}]/g, '\\$&')).join('[^:]+')}$`);
}
