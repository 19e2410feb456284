import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { scanSdkCalls } from '../support/aws-sdk-calls';
import {
  arnPatternRegex,
  asList,
  conditionKeyCovers,
  evaluate,
  fillArnPattern,
  PolicyDocument,
  policyProblems,
  RequestContext,
  wildcardMatch,
} from '../support/iam-policy';

/**
 * The IAM policy in docs/iam is what the code needs, no less and nothing unlisted: every AWS SDK command sent
 * from src/ has a row in docs/iam/actions.json (the resource form AWS documents for it), and the service
 * policy allows every row on every resource of every reading AWS's pages give, with the condition keys the
 * call carries. A new AWS call without a policy statement and a table row fails here, as does a statement
 * scoped the way AWS does not authorize the call (iot:DetachThingPrincipal on thing/* only, a kms:KeyUsage
 * condition on the kms:TagResource of CreateKey). docs/aws-setup.md shows the policy files verbatim.
 */

const root = path.resolve(__dirname, '../../..');
const IAM_DIR = path.join(root, 'docs/iam');
const SERVICE_POLICY = 'docs/iam/fleet-pki-service-policy.json';
const SETUP_DOC = 'docs/aws-setup.md';

interface ActionRow {
  action: string;
  sdkCommands: string[];
  usedFor: string;
  resourceForm: string;
  sar: { resourceTypes: { type: string; required: boolean }[]; conditionKeys: string[] };
  readings: { source: string; resources: string[] }[];
  context?: RequestContext;
  resourceContext?: Record<string, RequestContext>;
  note?: string;
}

interface ActionTable {
  partition: string;
  region: string;
  account: string;
  sources: Record<string, string>;
  samples: Record<string, string>;
  resourceTypes: Record<string, { arn: string; conditionKeys: string[] }>;
  actions: ActionRow[];
}

/**
 * Global condition keys every service supports (IAM User Guide, "AWS global condition context keys",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html). Tag keys are not
 * among them here: whether aws:RequestTag, aws:ResourceTag and aws:TagKeys apply is per action and resource type.
 */
const GLOBAL_CONDITION_KEYS = [
  'aws:CalledVia', 'aws:CalledViaFirst', 'aws:CalledViaLast', 'aws:CurrentTime', 'aws:EpochTime', 'aws:MultiFactorAuthPresent',
  'aws:PrincipalAccount', 'aws:PrincipalArn', 'aws:PrincipalOrgID', 'aws:PrincipalTag/${TagKey}', 'aws:PrincipalType',
  'aws:RequestedRegion', 'aws:ResourceAccount', 'aws:ResourceOrgID', 'aws:SecureTransport', 'aws:SourceIp', 'aws:SourceVpc',
  'aws:SourceVpce', 'aws:UserAgent', 'aws:userid', 'aws:username', 'aws:ViaAWSService', 'aws:VpcSourceIp',
];

const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const table = JSON.parse(read('docs/iam/actions.json')) as ActionTable;
const policyFiles = fs.readdirSync(IAM_DIR).filter((f) => f.endsWith('.json') && f !== 'actions.json').map((f) => `docs/iam/${f}`);

function loadPolicy(file = SERVICE_POLICY): PolicyDocument {
  return JSON.parse(read(file)) as PolicyDocument;
}

function samples(): Record<string, string> {
  return { ...table.samples, Partition: table.partition, Region: table.region, Account: table.account };
}

function fill(value: string | string[]): string | string[] {
  return Array.isArray(value) ? value.map((v) => fillArnPattern(v, samples())) : fillArnPattern(value, samples());
}

function fillContext(context: RequestContext | undefined): RequestContext {
  return Object.fromEntries(Object.entries(context ?? {}).map(([k, v]) => [k, fill(v)]));
}

/** Each resource a reading names, as a concrete ARN ("*" stays "*") with the condition keys of that resource. */
function readingResources(row: ActionRow, resources: string[]): { resource: string; context: RequestContext }[] {
  return resources.map((type) => {
    if (type === '*') return { resource: '*', context: fillContext(row.context) };
    const resourceType = table.resourceTypes[type];
    assert.ok(resourceType, `${row.action}: resource type ${type} is not in the table's resourceTypes`);
    return { resource: fillArnPattern(resourceType.arn, samples()), context: { ...fillContext(row.context), ...fillContext(row.resourceContext?.[type]) } };
  });
}

/** Every denial of the table's rows under the policy, one line each; empty when all are allowed. */
function denials(policy: PolicyDocument): string[] {
  const lines: string[] = [];
  for (const row of table.actions) {
    for (const reading of row.readings) {
      for (const { resource, context } of readingResources(row, reading.resources)) {
        const result = evaluate(policy, { action: row.action, resource, context });
        if (result.decision !== 'allow') lines.push(`${row.action} on ${resource} (${reading.source}): ${result.decision}`);
      }
    }
  }
  return lines;
}

/** Condition keys a statement uses that AWS does not document for one of its actions on its resources. */
function undocumentedConditionKeys(policy: PolicyDocument): string[] {
  const lines: string[] = [];
  for (const statement of policy.Statement) {
    const keys = Object.values(statement.Condition ?? {}).flatMap((block) => Object.keys(block));
    if (keys.length === 0) continue;
    const resources = asList(statement.Resource);
    for (const row of table.actions.filter((r) => asList(statement.Action).some((a) => wildcardMatch(a, r.action, true)))) {
      // Resource-type keys count only where the statement is scoped to that resource type; a "*" statement also
      // covers calls that carry no such resource (CreateKey's tags: the key does not exist yet).
      const scopedTypes = row.sar.resourceTypes
        .map((t) => t.type)
        .filter((type) => resources.some((r) => r !== '*' && wildcardMatch(r, fillArnPattern(table.resourceTypes[type].arn, samples()))));
      const documented = [...row.sar.conditionKeys, ...scopedTypes.flatMap((type) => table.resourceTypes[type].conditionKeys), ...GLOBAL_CONDITION_KEYS];
      for (const key of keys) {
        if (!documented.some((template) => conditionKeyCovers(template, key))) lines.push(`${statement.Sid}: ${key} is not a condition key AWS documents for ${row.action} on ${resources.join(', ')}`);
      }
    }
  }
  return lines;
}

describe('IAM policy evaluator (test/support/iam-policy)', () => {
  const policy: PolicyDocument = {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Things', Effect: 'Allow', Action: 'iot:Describe*', Resource: 'arn:aws:iot:eu-west-1:111122223333:thing/*' },
      { Sid: 'Tagged', Effect: 'Allow', Action: 'kms:Sign', Resource: 'arn:aws:kms:eu-west-1:111122223333:key/*', Condition: { StringLike: { 'aws:ResourceTag/team': '*' } } },
      { Sid: 'Create', Effect: 'Allow', Action: 'kms:CreateKey', Resource: '*', Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['team'] }, StringEquals: { 'kms:KeyUsage': ['SIGN_VERIFY'] } } },
      { Sid: 'NoProd', Effect: 'Deny', Action: 'kms:Sign', Resource: 'arn:aws:kms:eu-west-1:111122223333:key/prod-*' },
    ],
  };
  const thing = 'arn:aws:iot:eu-west-1:111122223333:thing/sensor-1';

  it('matches actions case-insensitively with wildcards, and resources as ARN patterns that never match "*"', () => {
    assert.equal(evaluate(policy, { action: 'iot:describething', resource: thing, context: {} }).decision, 'allow');
    assert.equal(evaluate(policy, { action: 'iot:DescribeThing', resource: '*', context: {} }).decision, 'implicit-deny');
    assert.equal(evaluate(policy, { action: 'iot:DescribeThing', resource: 'arn:aws:iot:eu-west-1:111122223333:cert/ab', context: {} }).decision, 'implicit-deny');
    assert.equal(evaluate(policy, { action: 'iot:UpdateThing', resource: thing, context: {} }).decision, 'implicit-deny');
  });

  it('evaluates conditions: a missing key fails StringLike, ForAllValues holds on an absent set, explicit Deny wins', () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234';
    assert.equal(evaluate(policy, { action: 'kms:Sign', resource: key, context: { 'aws:ResourceTag/team': 'pki' } }).decision, 'allow');
    assert.equal(evaluate(policy, { action: 'kms:Sign', resource: key, context: {} }).decision, 'implicit-deny');
    assert.equal(evaluate(policy, { action: 'kms:Sign', resource: 'arn:aws:kms:eu-west-1:111122223333:key/prod-1', context: { 'aws:ResourceTag/team': 'pki' } }).decision, 'explicit-deny');
    assert.equal(evaluate(policy, { action: 'kms:CreateKey', resource: '*', context: { 'kms:KeyUsage': 'SIGN_VERIFY' } }).decision, 'allow');
    assert.equal(evaluate(policy, { action: 'kms:CreateKey', resource: '*', context: { 'kms:KeyUsage': 'SIGN_VERIFY', 'aws:TagKeys': ['team', 'other'] } }).decision, 'implicit-deny');
    assert.equal(evaluate(policy, { action: 'kms:CreateKey', resource: '*', context: { 'kms:KeyUsage': 'ENCRYPT_DECRYPT' } }).decision, 'implicit-deny');
  });

  it('refuses what it does not model instead of guessing', () => {
    assert.deepEqual(policyProblems({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' }] }).length > 0, true);
    assert.match(policyProblems({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:Sign', Resource: '*', Condition: { DateLessThan: { 'aws:CurrentTime': 'x' } } }] })[0], /DateLessThan/);
    assert.ok(conditionKeyCovers('aws:RequestTag/${TagKey}', 'aws:RequestTag/fleet-pki:authority-id'));
    assert.ok(!conditionKeyCovers('kms:KeySpec', 'kms:KeyUsage'));
  });
});

describe('AWS SDK call scan (test/support/aws-sdk-calls)', () => {
  it('finds commands and paginators by their import, and reports what it cannot attribute', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-sdk-scan-'));
    try {
      fs.mkdirSync(path.join(dir, 'nested'));
      fs.writeFileSync(
        path.join(dir, 'nested/registry.ts'),
        [
          "import { ListThingsCommand as Things, paginateListThingGroups, IoTClient } from '@aws-sdk/client-iot';",
          "import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';",
          'class LocalCommand {}',
          'export async function f(c: IoTClient) {',
          '  await c.send(new Things({}));',
          '  for await (const page of paginateListThingGroups({ client: c }, {})) void page;',
          '  void new LocalCommand();',
          '  void new GetObjectCommand({ Bucket: "b", Key: "k" }); void S3Client;',
          '}',
        ].join('\n'),
      );
      fs.writeFileSync(path.join(dir, 'nested/registry.spec.ts'), "import { DeleteThingCommand } from '@aws-sdk/client-iot';\nvoid new DeleteThingCommand({ thingName: 'x' });\n");
      const scan = scanSdkCalls(dir);
      assert.deepEqual(scan.calls.map((c) => [c.action, c.line]), [['iot:ListThings', 5], ['iot:ListThingGroups', 6]]);
      assert.deepEqual(scan.unresolved.map((u) => u.name), ['LocalCommand']);
      assert.deepEqual(scan.unknownClients.map((u) => u.client), ['@aws-sdk/client-s3']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('IAM policy (docs/iam) against the AWS calls in src/', () => {
  it('the policy files are valid IAM policy documents', () => {
    assert.ok(policyFiles.includes(SERVICE_POLICY));
    for (const file of policyFiles) {
      const doc = JSON.parse(read(file)) as unknown;
      assert.deepEqual(policyProblems(doc, file.includes('trust-policy') ? 'trust' : 'identity'), [], file);
    }
  });

  it('every AWS SDK command in src/ has a row in docs/iam/actions.json', () => {
    const scan = scanSdkCalls(path.join(root, 'src'));
    assert.deepEqual(scan.unknownClients, [], 'an @aws-sdk/client-* package without its IAM service prefix in test/support/aws-sdk-calls.ts');
    assert.deepEqual(scan.unresolved, [], 'a Command or paginator not imported from an @aws-sdk/client-* package');
    assert.ok(scan.calls.length >= 30, `found only ${scan.calls.length} SDK calls: is the scan still looking at the right files?`);
    const missing = scan.calls
      .filter((call) => !table.actions.some((row) => row.action === call.action && row.sdkCommands.includes(call.name)))
      .map((call) => `${call.action} (${call.name} at ${path.relative(root, call.file)}:${call.line})`);
    assert.deepEqual([...new Set(missing)], [], 'add a row to docs/iam/actions.json and a statement to the policy');
  });

  it('every action the table needs is allowed on every resource of every reading (resource form and conditions)', () => {
    assert.deepEqual(denials(loadPolicy()), []);
  });

  it('the policy grants nothing the table does not list, with no wildcard actions', () => {
    const listed = new Set(table.actions.map((r) => r.action));
    const unlisted = loadPolicy().Statement.flatMap((s) => asList(s.Action)).filter((a) => !listed.has(a));
    assert.deepEqual(unlisted, []);
  });

  it('uses only condition keys AWS documents for each action of a statement', () => {
    assert.deepEqual(undocumentedConditionKeys(loadPolicy()), []);
  });

  it('the table follows the Service Authorization Reference: sample ARNs fit their patterns, readings name listed types, sources exist', () => {
    for (const [type, { arn }] of Object.entries(table.resourceTypes)) {
      const sample = fillArnPattern(arn, samples());
      assert.match(sample, arnPatternRegex(arn), type);
      assert.ok(sample.startsWith(`arn:aws:${type.split(':')[0]}:${table.region}:${table.account}:`), type);
    }
    for (const row of table.actions) {
      assert.ok(row.readings.length > 0, row.action);
      const sarTypes = row.sar.resourceTypes.map((t) => t.type);
      for (const reading of row.readings) {
        assert.ok(reading.source in table.sources, `${row.action}: unknown source ${reading.source}`);
        for (const type of reading.resources) assert.ok(type === '*' || sarTypes.includes(type), `${row.action}: ${type} is not a resource type the reference lists for it`);
        if (reading.source === 'sar-iot' || reading.source === 'sar-kms') {
          // The reference's own reading: no resource type means "*"; otherwise every required type is named.
          if (sarTypes.length === 0) assert.deepEqual(reading.resources, ['*'], row.action);
          for (const t of row.sar.resourceTypes.filter((t) => t.required)) assert.ok(reading.resources.includes(t.type), `${row.action}: required ${t.type}`);
        }
      }
    }
  });

  it('CreateKey is allowed for every KMS key spec the key manager asks for', () => {
    const source = fs.readdirSync(path.join(root, 'src/keys/aws-kms')).map((f) => read(`src/keys/aws-kms/${f}`)).join('\n');
    const specs = [...new Set([...source.matchAll(/'((?:ECC_(?:NIST|SECG)_P\d+K?1?)|RSA_\d{4}|ML_DSA_\d+)'/g)].map((m) => m[1]))];
    assert.ok(specs.length >= 5, `key specs found: ${specs.join(', ')}`);
    const row = table.actions.find((r) => r.action === 'kms:CreateKey')!;
    for (const spec of specs) {
      const result = evaluate(loadPolicy(), { action: 'kms:CreateKey', resource: '*', context: { ...fillContext(row.context), 'kms:KeySpec': spec } });
      assert.equal(result.decision, 'allow', `CreateKey ${spec}`);
    }
    // And nothing else: an encryption key, or one without the authority tag, is refused.
    const refused = [
      { ...fillContext(row.context), 'kms:KeyUsage': 'ENCRYPT_DECRYPT', 'kms:KeySpec': 'SYMMETRIC_DEFAULT' },
      { 'kms:KeyUsage': 'SIGN_VERIFY', 'kms:KeySpec': 'ECC_NIST_P256' },
    ];
    for (const context of refused) assert.notEqual(evaluate(loadPolicy(), { action: 'kms:CreateKey', resource: '*', context }).decision, 'allow');
  });

  it(`${SETUP_DOC} shows each policy file verbatim, and no IAM policy that is not one of them`, () => {
    const doc = read(SETUP_DOC);
    const shown = new Set<string>();
    for (const match of doc.matchAll(/```json\n([\s\S]*?)```/g)) {
      const before = doc.slice(0, match.index).trimEnd();
      const marker = /<!-- (docs\/(?:iam|iot)\/[\w.-]+\.json) -->$/.exec(before);
      if (!marker) {
        // Fragments (a response excerpt) are not always whole JSON documents: look for a policy's shape in the text.
        assert.ok(!/"Statement"\s*:/.test(match[1]), `a policy in ${SETUP_DOC} without a <!-- docs/iam/<file>.json --> (or docs/iot/) marker:\n${match[1].slice(0, 200)}`);
        continue;
      }
      assert.equal(match[1], read(marker[1]), `${SETUP_DOC} differs from ${marker[1]}`);
      shown.add(marker[1]);
    }
    assert.deepEqual([...shown].filter((f) => f.startsWith('docs/iam/')).sort(), [...policyFiles].sort(), `every file in docs/iam is shown in ${SETUP_DOC}`);
  });

  it(`${SETUP_DOC} lists every action of the table`, () => {
    const doc = read(SETUP_DOC);
    const absent = table.actions.filter((row) => !doc.includes(`\`${row.action}\``)).map((row) => row.action);
    assert.deepEqual(absent, []);
  });
});
