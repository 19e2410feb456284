import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { DomainError } from '../common/errors';
import {
  DEFAULT_POLICY_TEMPLATE,
  defaultPolicyDocument,
  IotPolicyStatement,
  lintIotPolicy,
  parsePolicyDocument,
  POLICY_DOCUMENT_MAX_CHARACTERS,
  PolicyDocumentError,
  PolicyFindingCode,
  PolicyFindingSeverity,
} from './policy-lint';

const THING = '${iot:Connection.Thing.ThingName}';
const ARN = 'arn:aws:iot:us-east-1:123456789012:';

/** A policy of one statement (an Allow unless told otherwise). */
function policy(statement: Partial<IotPolicyStatement>, more: IotPolicyStatement[] = []): object {
  return { Version: '2012-10-17', Statement: [{ Effect: 'Allow', ...statement }, ...more] };
}

/** The finding codes (with severity and statement) of a document, in order. */
function codes(document: unknown): string[] {
  return lintIotPolicy(document).map((finding) => `${finding.code}:${finding.severity}:${finding.statement}`);
}

const pinnedConnect: IotPolicyStatement = { Sid: 'Connect', Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}client/${THING}` };

describe('DEFAULT_POLICY_TEMPLATE', () => {
  it('is named fleet-default and has no findings', () => {
    assert.equal(DEFAULT_POLICY_TEMPLATE.name, 'fleet-default');
    assert.deepEqual(lintIotPolicy(DEFAULT_POLICY_TEMPLATE.document), []);
  });

  it('parses as a valid policy within the AWS IoT size limit, also as JSON text', () => {
    const text = JSON.stringify(DEFAULT_POLICY_TEMPLATE.document, null, 2);
    assert.deepEqual(parsePolicyDocument(text), DEFAULT_POLICY_TEMPLATE.document);
    assert.ok(JSON.stringify(DEFAULT_POLICY_TEMPLATE.document).length < POLICY_DOCUMENT_MAX_CHARACTERS);
  });

  it('connects only as the thing itself while attached, and scopes every topic to the thing (jobs included)', () => {
    const statements = DEFAULT_POLICY_TEMPLATE.document.Statement as IotPolicyStatement[];
    const connect = statements.find((s) => s.Action === 'iot:Connect')!;
    assert.equal(connect.Resource, `arn:aws:iot:*:*:client/${THING}`);
    assert.deepEqual(connect.Condition, { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } });
    const resources = statements.flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource!]));
    assert.ok(resources.includes(`arn:aws:iot:*:*:topic/$aws/things/${THING}/jobs/*`));
    assert.ok(resources.includes(`arn:aws:iot:*:*:topicfilter/$aws/things/${THING}/jobs/*`));
    assert.ok(resources.includes(`arn:aws:iot:*:*:topic/dt/${THING}/*`));
    assert.ok(resources.includes(`arn:aws:iot:*:*:topicfilter/cmd/${THING}/*`));
    assert.ok(resources.every((r) => r.includes(THING)));
  });

  it('cannot be changed by its users', () => {
    assert.ok(Object.isFrozen(DEFAULT_POLICY_TEMPLATE.document));
    assert.throws(() => {
      (DEFAULT_POLICY_TEMPLATE.document.Statement as IotPolicyStatement[]).push(pinnedConnect);
    });
  });

  it('can be built for a concrete partition, region and account, still without findings', () => {
    const document = defaultPolicyDocument({ partition: 'aws-cn', region: 'cn-north-1', accountId: '123456789012' });
    assert.match(JSON.stringify(document), /arn:aws-cn:iot:cn-north-1:123456789012:client\//);
    assert.deepEqual(lintIotPolicy(document), []);
  });
});

describe('lintIotPolicy', () => {
  const cases: { name: string; document: object; expected: string[] }[] = [
    // Well-scoped documents.
    { name: 'a pinned connect', document: policy(pinnedConnect), expected: [] },
    {
      name: 'publish under the thing namespace with concrete region and account',
      document: policy({ Action: ['iot:Publish', 'iot:Receive'], Resource: [`${ARN}topic/dt/${THING}/*`, `${ARN}topic/fleet/broadcast`] }),
      expected: [],
    },
    {
      name: 'shadow and job executions of the thing itself',
      document: policy({ Action: ['iot:GetThingShadow', 'iot:UpdateThingShadow', 'iotjobsdata:DescribeJobExecution'], Resource: [`${ARN}thing/${THING}`, `${ARN}thing/${THING}/*`] }),
      expected: [],
    },
    {
      name: '${iot:ClientId} topics when connect pins the client id to the thing name',
      document: policy({ Action: 'iot:Subscribe', Resource: `${ARN}topicfilter/dt/\${iot:ClientId}/#` }, [pinnedConnect]),
      expected: [],
    },
    {
      name: 'literal wildcard escapes $(*) and a fixed topic',
      document: policy({ Action: 'iot:Publish', Resource: `${ARN}topic/fleet/$(*)` }),
      expected: [],
    },

    // WILDCARD_ACTION
    { name: 'iot:*', document: policy({ Action: 'iot:*', Resource: `${ARN}topic/dt/${THING}/*` }), expected: ['WILDCARD_ACTION:high:#0'] },
    { name: '* on a scoped resource', document: policy({ Sid: 'All', Action: '*', Resource: `${ARN}thing/${THING}` }), expected: ['WILDCARD_ACTION:high:All'] },
    { name: 'a partial wildcard', document: policy({ Action: ['iot:Publish', 'iot:Get*'], Resource: `${ARN}topic/dt/${THING}/x` }), expected: ['WILDCARD_ACTION:high:#0'] },
    { name: 'iot:* on *', document: policy({ Action: 'iot:*', Resource: '*' }), expected: ['WILDCARD_ACTION:high:#0', 'WILDCARD_RESOURCE:high:#0'] },

    // NOT_ACTION_OR_RESOURCE
    { name: 'NotAction in an Allow', document: policy({ NotAction: 'iot:UpdateCertificate', Resource: `${ARN}topic/dt/${THING}/*` }), expected: ['NOT_ACTION_OR_RESOURCE:high:#0'] },
    { name: 'NotResource in an Allow', document: policy({ Action: 'iot:Publish', NotResource: `${ARN}topic/admin/*` }), expected: ['NOT_ACTION_OR_RESOURCE:high:#0'] },

    // WILDCARD_RESOURCE
    { name: 'publish on *', document: policy({ Action: 'iot:Publish', Resource: '*' }), expected: ['WILDCARD_RESOURCE:high:#0'] },
    { name: 'connect on *', document: policy({ Action: 'iot:Connect', Resource: '*' }), expected: ['WILDCARD_RESOURCE:high:#0'] },
    { name: 'receive on arn:aws:iot:*', document: policy({ Action: 'iot:Receive', Resource: 'arn:aws:iot:*' }), expected: ['WILDCARD_RESOURCE:high:#0'] },
    { name: 'subscribe on arn:aws:iot:*:*:*', document: policy({ Action: 'iot:Subscribe', Resource: 'arn:aws:iot:*:*:*' }), expected: ['WILDCARD_RESOURCE:high:#0'] },
    { name: 'publish on a wildcard resource type', document: policy({ Action: 'iot:Publish', Resource: `${ARN}*` }), expected: ['WILDCARD_RESOURCE:high:#0'] },

    // CONNECT_ANY_CLIENT
    { name: 'connect on client/*', document: policy({ Action: 'iot:Connect', Resource: `${ARN}client/*` }), expected: ['CONNECT_ANY_CLIENT:high:#0'] },
    { name: 'connect on a fixed client id', document: policy({ Action: 'iot:Connect', Resource: `${ARN}client/gateway-1` }), expected: ['CONNECT_ANY_CLIENT:high:#0'] },
    { name: 'connect on ${iot:ClientId}', document: policy({ Action: 'iot:Connect', Resource: `${ARN}client/\${iot:ClientId}` }), expected: ['CONNECT_ANY_CLIENT:high:#0'] },
    { name: 'connect on a thing-name prefix', document: policy({ Action: 'iot:Connect', Resource: `${ARN}client/${THING}*` }), expected: ['CONNECT_ANY_CLIENT:high:#0'] },

    // UNSCOPED_TOPIC
    { name: 'publish on topic/*', document: policy({ Action: 'iot:Publish', Resource: `${ARN}topic/*` }), expected: ['UNSCOPED_TOPIC:high:#0'] },
    { name: 'receive on dt/*', document: policy({ Action: 'iot:Receive', Resource: `${ARN}topic/dt/*` }), expected: ['UNSCOPED_TOPIC:medium:#0'] },
    { name: 'subscribe with # outside the thing', document: policy({ Action: 'iot:Subscribe', Resource: `${ARN}topicfilter/dt/#` }), expected: ['UNSCOPED_TOPIC:medium:#0'] },
    { name: 'subscribe with + before the thing', document: policy({ Action: 'iot:Subscribe', Resource: `${ARN}topicfilter/+/${THING}/x` }), expected: ['UNSCOPED_TOPIC:medium:#0'] },
    { name: 'a wildcard before the thing segment', document: policy({ Action: 'iot:Publish', Resource: `${ARN}topic/*/${THING}` }), expected: ['UNSCOPED_TOPIC:high:#0'] },
    { name: 'a wildcard glued to the thing name', document: policy({ Action: 'iot:Publish', Resource: `${ARN}topic/dt/${THING}*` }), expected: ['UNSCOPED_TOPIC:high:#0'] },
    { name: 'an MQTT # in a topic (literal, matches nothing)', document: policy({ Action: 'iot:Receive', Resource: `${ARN}topic/dt/#` }), expected: ['UNSCOPED_TOPIC:low:#0'] },
    {
      name: '${iot:ClientId} when nothing pins the client id',
      document: policy({ Action: 'iot:Publish', Resource: `${ARN}topic/dt/\${iot:ClientId}/*` }),
      expected: ['UNSCOPED_TOPIC:high:#0'],
    },
    {
      name: '${iot:ClientId} when another statement connects as any client',
      document: policy({ Sid: 'Pub', Action: 'iot:Publish', Resource: `${ARN}topic/dt/\${iot:ClientId}/*` }, [{ Sid: 'Any', Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}client/*` }]),
      expected: ['UNSCOPED_TOPIC:high:Pub', 'CONNECT_ANY_CLIENT:high:Any'],
    },

    // UNSCOPED_THING
    { name: 'update any shadow', document: policy({ Action: 'iot:UpdateThingShadow', Resource: `${ARN}thing/*` }), expected: ['UNSCOPED_THING:high:#0'] },
    { name: 'read any pending job executions', document: policy({ Action: 'iot:GetPendingJobExecutions', Resource: `${ARN}thing/*` }), expected: ['UNSCOPED_THING:medium:#0'] },

    // NON_DATA_PLANE_ACTION
    { name: 'iot:UpdateCertificate', document: policy({ Action: 'iot:UpdateCertificate', Resource: '*' }), expected: ['NON_DATA_PLANE_ACTION:high:#0'] },
    { name: 'iot:DescribeCertificate (read only)', document: policy({ Action: 'iot:DescribeCertificate', Resource: `${ARN}cert/*` }), expected: ['NON_DATA_PLANE_ACTION:medium:#0'] },
    {
      name: 'a control-plane action next to a scoped data-plane one',
      document: policy({ Action: ['iot:Publish', 'iot:AttachPolicy'], Resource: `${ARN}topic/dt/${THING}/*` }),
      expected: ['NON_DATA_PLANE_ACTION:high:#0'],
    },
    { name: 'another service', document: policy({ Action: 'iam:PassRole', Resource: 'arn:aws:iam::123456789012:role/x' }), expected: ['NON_DATA_PLANE_ACTION:high:#0'] },

    // Several findings, several statements.
    {
      name: 'the usual getting-started policy',
      document: { Version: '2012-10-17', Statement: { Effect: 'Allow', Action: ['iot:Connect', 'iot:Publish', 'iot:Subscribe', 'iot:Receive'], Resource: '*' } },
      expected: ['WILDCARD_RESOURCE:high:#0'],
    },
    {
      name: 'findings per statement, Sid or index',
      document: policy({ Sid: 'Connect', Action: 'iot:Connect', Resource: `${ARN}client/*` }, [
        { Effect: 'Allow', Action: ['iot:Publish', 'iot:CreateThing'], Resource: [`${ARN}topic/*`, `${ARN}topic/fleet/*`] },
      ]),
      expected: ['CONNECT_ANY_CLIENT:high:Connect', 'NON_DATA_PLANE_ACTION:high:#1', 'UNSCOPED_TOPIC:high:#1'],
    },
  ];

  for (const { name, document, expected } of cases) {
    it(`${expected.length === 0 ? 'passes' : `flags ${[...new Set(expected.map((e) => e.split(':')[0]))].join(' + ')} for`} ${name}`, () => {
      assert.deepEqual(codes(document), expected);
    });
  }

  it('never flags a Deny, however broad', () => {
    const denies: IotPolicyStatement[] = [
      { Effect: 'Deny', Action: '*', Resource: '*' },
      { Effect: 'Deny', NotAction: 'iot:Connect', NotResource: `${ARN}client/*` },
      { Effect: 'Deny', Action: ['iot:UpdateCertificate', 'iot:Publish'], Resource: [`${ARN}topic/#`, `${ARN}client/*`, `${ARN}thing/*`] },
    ];
    assert.deepEqual(lintIotPolicy({ Version: '2012-10-17', Statement: denies }), []);
    assert.deepEqual(lintIotPolicy({ Version: '2012-10-17', Statement: [...(DEFAULT_POLICY_TEMPLATE.document.Statement as IotPolicyStatement[]), ...denies] }), []);
  });

  it('names every offender of a code in one finding with the highest severity', () => {
    const [finding] = lintIotPolicy(policy({ Action: ['iot:Receive', 'iot:Publish'], Resource: [`${ARN}topic/a/*`, `${ARN}topic/b/*`] }));
    assert.equal(finding.code, 'UNSCOPED_TOPIC');
    assert.equal(finding.severity, 'high');
    assert.match(finding.message, /topic\/a\/\*/);
    assert.match(finding.message, /topic\/b\/\*/);
  });

  it('matches action names case-insensitively, as AWS does', () => {
    assert.deepEqual(codes(policy({ Action: 'IOT:publish', Resource: `${ARN}topic/*` })), ['UNSCOPED_TOPIC:high:#0']);
    assert.deepEqual(codes(policy({ Action: 'iot:connect', Resource: `${ARN}client/${THING}` })), []);
  });

  it('matches action globs in linear time: iot:<40 stars>x answers at once (a RegExp of .*.*… took minutes)', () => {
    const started = performance.now();
    const findings = codes(policy({ Action: `iot:${'*'.repeat(40)}x`, Resource: `${ARN}client/${THING}` }, [{ Effect: 'Allow', NotAction: `iot:${'*?'.repeat(30)}z`, Resource: '*' }]));
    const ms = performance.now() - started;
    assert.ok(ms < 50, `lint took ${ms.toFixed(1)} ms`);
    assert.deepEqual(findings, ['WILDCARD_ACTION:high:#0', 'NOT_ACTION_OR_RESOURCE:high:#1']);
  });

  it('accepts JSON text and refuses what is not a policy', () => {
    assert.deepEqual(codes(JSON.stringify(policy({ Action: 'iot:Publish', Resource: '*' }))), ['WILDCARD_RESOURCE:high:#0']);
    assert.throws(() => lintIotPolicy(42), PolicyDocumentError);
    assert.throws(() => lintIotPolicy('{"Version":"2012-10-17"}'), PolicyDocumentError);
  });

  it('gives each finding a code, severity, statement and message', () => {
    const severities: PolicyFindingSeverity[] = ['high', 'medium', 'low'];
    const all: PolicyFindingCode[] = ['WILDCARD_ACTION', 'NOT_ACTION_OR_RESOURCE', 'WILDCARD_RESOURCE', 'UNSCOPED_TOPIC', 'UNSCOPED_THING', 'CONNECT_ANY_CLIENT', 'NON_DATA_PLANE_ACTION'];
    for (const finding of lintIotPolicy(policy({ Action: ['iot:*', 'iot:DeleteCertificate'], Resource: '*' }))) {
      assert.ok(all.includes(finding.code));
      assert.ok(severities.includes(finding.severity));
      assert.equal(finding.statement, '#0');
      assert.ok(finding.message.length > 20);
    }
  });
});

describe('parsePolicyDocument', () => {
  function refused(input: string | object, message: RegExp, path?: string): void {
    assert.throws(
      () => parsePolicyDocument(input),
      (err: unknown) => {
        assert.ok(err instanceof PolicyDocumentError, `expected a PolicyDocumentError, got ${String(err)}`);
        assert.ok(err instanceof DomainError);
        assert.equal(err.code, 'INVALID_POLICY_DOCUMENT');
        assert.equal(err.status, 422);
        assert.match(err.message, message);
        if (path) assert.equal(err.path, path);
        return true;
      },
    );
  }

  const statement = { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}client/${THING}` };

  it('returns a copy of a valid document, keeping strings and arrays as given', () => {
    const input = { Version: '2012-10-17', Id: 'p', Statement: [{ ...statement, Sid: 'A', Condition: { Bool: { 'iot:Connection.Thing.IsAttached': ['true'] } } }] };
    const parsed = parsePolicyDocument(input);
    assert.deepEqual(parsed, input);
    assert.notEqual(parsed, input);
    assert.deepEqual(parsePolicyDocument({ Version: '2012-10-17', Statement: statement }).Statement, statement);
  });

  const malformed: [string, string | object, RegExp, string?][] = [
    ['text that is not JSON', '{"Version": ', /not valid JSON/, '$'],
    ['empty text', '   ', /is empty/],
    ['a JSON array', '[]', /must be a JSON object/],
    ['a missing Version', { Statement: [statement] }, /needs "Version": "2012-10-17"/, 'Version'],
    ['another Version', { Version: '2008-10-17', Statement: [statement] }, /must be "2012-10-17"/, 'Version'],
    ['a missing Statement', { Version: '2012-10-17' }, /Statement: is required/, 'Statement'],
    ['an empty Statement array', { Version: '2012-10-17', Statement: [] }, /at least one statement/],
    ['a Statement that is a string', { Version: '2012-10-17', Statement: 'allow all' }, /statement object or an array/],
    ['more than 50 statements', { Version: '2012-10-17', Statement: Array.from({ length: 51 }, () => ({ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' })) }, /51 statements; at most 50/],
    ['an unknown top-level element', { Version: '2012-10-17', Statement: [statement], Extra: 1 }, /unknown element "Extra"/],
    ['an Effect in lower case', { Version: '2012-10-17', Statement: [{ ...statement, Effect: 'allow' }] }, /Effect: must be "Allow" or "Deny"/, 'Statement[0].Effect'],
    ['a missing Effect', { Version: '2012-10-17', Statement: [{ Action: 'iot:Connect', Resource: '*' }] }, /must be "Allow" or "Deny", not missing/],
    ['no Action', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Resource: '*' }] }, /needs an Action/],
    ['Action and NotAction', { Version: '2012-10-17', Statement: [{ ...statement, NotAction: 'iot:Publish' }] }, /both Action and NotAction/],
    ['no Resource', { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect' }] }, /needs a Resource/],
    ['Resource and NotResource', { Version: '2012-10-17', Statement: [{ ...statement, NotResource: '*' }] }, /both Resource and NotResource/],
    ['an Action that is a number', { Version: '2012-10-17', Statement: [{ ...statement, Action: 7 }] }, /Action: must be a string or an array/, 'Statement[0].Action'],
    ['an empty Action array', { Version: '2012-10-17', Statement: [{ ...statement, Action: [] }] }, /must not be an empty array/],
    ['an Action without a service', { Version: '2012-10-17', Statement: [{ ...statement, Action: ['iot:Publish', 'Publish'] }] }, /"Publish" is not an action/, 'Statement[0].Action[1]'],
    ['a Resource that is not an ARN', { Version: '2012-10-17', Statement: [{ ...statement, Resource: 'topic/dt' }] }, /not an ARN/],
    ['a Resource array holding a number', { Version: '2012-10-17', Statement: [{ ...statement, Resource: ['*', 1] }] }, /Resource\[1\]: must be a string/],
    ['a Principal', { Version: '2012-10-17', Statement: [{ ...statement, Principal: '*' }] }, /unknown element "Principal".*name no principal/],
    ['a Condition that is a list', { Version: '2012-10-17', Statement: [{ ...statement, Condition: [] }] }, /Condition: must be an object/],
    ['a Condition value that is an object', { Version: '2012-10-17', Statement: [{ ...statement, Condition: { Bool: { k: { v: 1 } } } }] }, /must be a string, number or boolean/],
    ['a Sid that is not a string', { Version: '2012-10-17', Statement: [{ ...statement, Sid: 3 }] }, /Sid: must be a string/],
    ['the same Sid twice', { Version: '2012-10-17', Statement: [{ ...statement, Sid: 'A' }, { ...statement, Sid: 'A' }] }, /Sid "A" is used twice/],
  ];

  for (const [name, input, message, path] of malformed) {
    it(`refuses ${name}`, () => refused(input, message, path));
  }

  it(`refuses a document over ${POLICY_DOCUMENT_MAX_CHARACTERS} characters, not counting whitespace`, () => {
    // Each resource is ~60 characters: 40 of them pass 2048.
    const resources = Array.from({ length: 40 }, (_, i) => `${ARN}topic/dt/${THING}/channel-${i}`);
    const big = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: resources }] };
    refused(big, /characters \(whitespace excluded\); AWS IoT accepts at most 2048/, '$');

    // The same document spaced out generously but under the limit once whitespace is dropped passes.
    const small = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: resources.slice(0, 10) }] };
    const spaced = JSON.stringify(small).replace(/,/g, `,${' '.repeat(200)}`);
    assert.ok(spaced.length > POLICY_DOCUMENT_MAX_CHARACTERS);
    assert.deepEqual(parsePolicyDocument(spaced), small);
  });
});
