import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { asList, evaluate, PolicyDocument, PolicyStatement, policyProblems } from '../support/iam-policy';

/**
 * Least privilege of the AWS deploy kit (deploy/, docs/aws-deploy.md), read from the CloudFormation template that
 * `cdk synth` wrote to deploy/cdk.out (CI synthesizes it offline before the tests: `npm --prefix deploy run synth:ci`,
 * the custom-domain variant, so the OCSP Lambda's permission is checked too).
 *
 * Every IAM statement the stack adds (role inline policies, AWS::IAM::Policy, AWS::IAM::ManagedPolicy) names its
 * actions without wildcards and its resources by ARN in this account and region; a `*` resource only where AWS has no
 * narrower form (RESOURCE_STAR_EXCEPTIONS, each with its reason); no AWS managed policy. Each role is then evaluated
 * (test/support/iam-policy.ts) for what its function or template needs and for what it must not reach. Lambda
 * invoke permissions go to iot.amazonaws.com only, with SourceAccount and SourceArn; functions run Node 22 or 24.
 */

const root = path.resolve(__dirname, '../../..');
const CDK_OUT = path.join(root, 'deploy', 'cdk.out');
const HOW_TO = 'run `npm run build:lambdas && npm ci --prefix deploy && npm --prefix deploy run synth:ci` first (CI always does)';

/**
 * Statements allowed a "*" resource: AWS authorizes these actions on no narrower resource.
 * - iot:AttachThingPrincipal — the Service Authorization Reference lists no resource type for it ("you must specify
 *   all resources"); `thing/*` is refused (docs/aws-deploy.md "IAM exceptions", shared AWS facts). The provisioning
 *   template's RegisterThing attaches the new certificate to the new thing with it.
 */
const RESOURCE_STAR_EXCEPTIONS: { actions: string[]; why: string }[] = [
  { actions: ['iot:AttachThingPrincipal'], why: 'no resource type in the Service Authorization Reference: only "*" authorizes it' },
];

const PARTITION = 'aws';
const REGION = 'eu-west-1';
const ACCOUNT = '111122223333';

type Json = unknown;
interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
  DependsOn?: string | string[];
}
interface Template {
  Parameters?: Record<string, { Default?: unknown }>;
  Resources: Record<string, Resource>;
}

function synthesizedTemplate(): Template | undefined {
  const manifestFile = path.join(CDK_OUT, 'manifest.json');
  if (!fs.existsSync(manifestFile)) return undefined;
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { artifacts: Record<string, { type: string; properties?: { templateFile?: string } }> };
  const stacks = Object.values(manifest.artifacts).filter((a) => a.type === 'aws:cloudformation:stack');
  assert.equal(stacks.length, 1, 'one stack in deploy/cdk.out');
  return JSON.parse(fs.readFileSync(path.join(CDK_OUT, stacks[0].properties!.templateFile!), 'utf8')) as Template;
}

const template = synthesizedTemplate();
const skip = template ? false : `deploy/cdk.out is absent: ${HOW_TO}`;

/** Intrinsic functions resolved to concrete strings, as CloudFormation would in account 111122223333, eu-west-1. */
function resolve(value: Json, t: Template): Json {
  if (typeof value === 'string' || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => resolve(v, t));
  const obj = value as Record<string, Json>;
  if ('Ref' in obj) return ref(String(obj.Ref), t);
  if ('Fn::GetAtt' in obj) {
    const [id, attr] = obj['Fn::GetAtt'] as [string, string];
    return getAtt(id, attr, t);
  }
  if ('Fn::Join' in obj) {
    const [sep, parts] = obj['Fn::Join'] as [string, Json[]];
    return parts.map((p) => String(resolve(p, t))).join(sep);
  }
  if ('Fn::Sub' in obj) return String(obj['Fn::Sub']).replace(/\$\{([^}]+)\}/g, (_m, name: string) => String(ref(name, t)));
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, resolve(v, t)]));
}

function ref(name: string, t: Template): string {
  if (name === 'AWS::Partition') return PARTITION;
  if (name === 'AWS::Region') return REGION;
  if (name === 'AWS::AccountId') return ACCOUNT;
  if (name === 'AWS::URLSuffix') return 'amazonaws.com';
  if (t.Parameters?.[name]) return String(t.Parameters[name].Default ?? `param-${name}`);
  const resource = t.Resources[name];
  if (resource?.Type === 'AWS::SecretsManager::Secret') return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
  return name;
}

function getAtt(id: string, attr: string, t: Template): string {
  const resource = t.Resources[id];
  assert.ok(resource, `GetAtt of an unknown resource ${id}`);
  if (attr !== 'Arn') return `${id}.${attr}`;
  switch (resource.Type) {
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`;
    case 'AWS::Logs::LogGroup':
      return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${resource.Properties!.LogGroupName}:*`;
    case 'AWS::IAM::Role':
      return `arn:aws:iam::${ACCOUNT}:role/${id}`;
    case 'AWS::IoT::CertificateProvider':
      return `arn:aws:iot:${REGION}:${ACCOUNT}:certificateprovider/${resource.Properties!.CertificateProviderName}`;
    default:
      return `arn:aws:unknown:${REGION}:${ACCOUNT}:${id}`;
  }
}

const ofType = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);

/** Every identity policy document the stack adds, with where it comes from and the roles it is attached to. */
function identityPolicies(t: Template): { where: string; roles: string[]; doc: PolicyDocument }[] {
  const out: { where: string; roles: string[]; doc: PolicyDocument }[] = [];
  for (const [id, r] of [...ofType(t, 'AWS::IAM::Policy'), ...ofType(t, 'AWS::IAM::ManagedPolicy')]) {
    const roles = asList((r.Properties!.Roles ?? []) as Json[]).map((role) => (role as { Ref: string }).Ref);
    out.push({ where: id, roles, doc: resolve(r.Properties!.PolicyDocument, t) as PolicyDocument });
  }
  for (const [id, r] of ofType(t, 'AWS::IAM::Role')) {
    for (const inline of (r.Properties!.Policies ?? []) as { PolicyName: string; PolicyDocument: Json }[]) {
      out.push({ where: `${id}/${inline.PolicyName}`, roles: [id], doc: resolve(inline.PolicyDocument, t) as PolicyDocument });
    }
  }
  return out;
}

/** The merged identity policy of one role. */
function rolePolicy(t: Template, roleId: string): PolicyDocument {
  const statements: PolicyStatement[] = identityPolicies(t)
    .filter((p) => p.roles.includes(roleId))
    .flatMap((p) => p.doc.Statement);
  return { Version: '2012-10-17', Statement: statements };
}

/** The function whose logical id starts with the handler's PascalCase name, and its role's logical id. */
function fn(t: Template, prefix: string): { id: string; props: Record<string, Json>; roleId: string } {
  const found = ofType(t, 'AWS::Lambda::Function').filter(([id]) => id.startsWith(`${prefix}Function`));
  assert.equal(found.length, 1, `one ${prefix} function`);
  const [id, r] = found[0];
  const roleId = (r.Properties!.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return { id, props: r.Properties!, roleId };
}

const arn = (service: string, resource: string, region = REGION) => `arn:aws:${service}:${region}:${ACCOUNT}:${resource}`;
const can = (doc: PolicyDocument, action: string, resource: string) => evaluate(doc, { action, resource, context: {} }).decision === 'allow';

describe('deploy kit: least privilege in the synthesized CloudFormation template', { skip }, () => {
  const t = template!;

  it('adds only valid identity policies whose actions carry no wildcard and whose resources are this account\'s ARNs', () => {
    const policies = identityPolicies(t);
    assert.ok(policies.length >= 4, 'the three function roles and the provisioning role have policies');
    for (const { where, doc } of policies) {
      assert.deepEqual(policyProblems(doc), [], where);
      for (const s of doc.Statement) {
        const label = `${where} ${s.Sid ?? ''}`;
        assert.equal(s.Effect, 'Allow', `${label}: allows only`);
        assert.ok(!('NotAction' in s) && !('NotResource' in s), `${label}: no NotAction/NotResource`);
        for (const action of asList(s.Action)) assert.match(action, /^[a-z0-9-]+:[A-Za-z0-9]+$/, `${label}: action "${action}" names one action`);
        for (const resource of asList(s.Resource)) {
          if (resource === '*') {
            const exception = RESOURCE_STAR_EXCEPTIONS.find((e) => asList(s.Action).every((a) => e.actions.includes(a)));
            assert.ok(exception, `${label}: "*" resource for ${asList(s.Action).join(', ')}, which AWS can scope`);
            continue;
          }
          const parts = resource.split(':');
          assert.equal(parts[0], 'arn', `${label}: "${resource}" is an ARN`);
          assert.equal(parts[1], PARTITION, `${label}: "${resource}" partition`);
          assert.ok(!parts.slice(2, 5).some((p) => p.includes('*')), `${label}: "${resource}" has no wildcard in service, region or account`);
          assert.equal(parts[4], ACCOUNT, `${label}: "${resource}" is in this account`);
          assert.ok(parts[3] === REGION || parts[2] === 'iam', `${label}: "${resource}" is in this region`);
          assert.notEqual(parts.slice(5).join(':'), '*', `${label}: "${resource}" names a resource type`);
        }
      }
    }
  });

  it('uses no AWS managed policy; each role trusts exactly one AWS service principal', () => {
    const roles = ofType(t, 'AWS::IAM::Role');
    assert.equal(roles.length, 4, 'three function roles and the provisioning role');
    for (const [id, r] of roles) {
      assert.equal(r.Properties!.ManagedPolicyArns, undefined, `${id} has no managed policy (AWSLambdaBasicExecutionRole would grant logs on "*")`);
      const trust = r.Properties!.AssumeRolePolicyDocument as { Statement: { Effect: string; Action: string; Principal: { Service?: string } }[] };
      assert.equal(trust.Statement.length, 1, id);
      const [s] = trust.Statement;
      assert.equal(s.Effect, 'Allow');
      assert.equal(s.Action, 'sts:AssumeRole');
      assert.deepEqual(Object.keys(s.Principal), ['Service'], `${id} trusts a service, not an account or "*"`);
      assert.ok(['lambda.amazonaws.com', 'iot.amazonaws.com'].includes(String(s.Principal.Service)), `${id}: ${s.Principal.Service}`);
    }
    assert.equal(ofType(t, 'AWS::IAM::ManagedPolicy').length, 0);
    assert.equal(ofType(t, 'AWS::IAM::User').length + ofType(t, 'AWS::IAM::AccessKey').length, 0, 'no users or access keys');
  });

  it('lets each function reach its own log group, and only the two that need it the API key secret', () => {
    const secrets = ofType(t, 'AWS::SecretsManager::Secret');
    assert.equal(secrets.length, 1);
    const secretArn = ref(secrets[0][0], t);
    const otherSecret = arn('secretsmanager', 'secret:someone-else-AbCdEf');
    const functions = { provider: fn(t, 'CertificateProvider'), check: fn(t, 'ClientCertificateCheck'), ocsp: fn(t, 'OcspStaple') };
    for (const [name, f] of Object.entries(functions)) {
      const doc = rolePolicy(t, f.roleId);
      const logGroupArn = getAtt((f.props.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref, 'Arn', t);
      const stream = `${logGroupArn.slice(0, -1)}log-stream:2026/12/07/[$LATEST]abc`;
      assert.ok(can(doc, 'logs:PutLogEvents', stream), `${name} writes its own log stream`);
      assert.ok(can(doc, 'logs:CreateLogStream', stream), `${name} creates its own log stream`);
      assert.ok(!can(doc, 'logs:PutLogEvents', arn('logs', 'log-group:/aws/lambda/other:log-stream:x')), `${name} cannot write other log groups`);
      assert.ok(!can(doc, 'logs:CreateLogGroup', logGroupArn), `${name} creates no log group (the stack owns it)`);
      assert.ok(!can(doc, 'secretsmanager:GetSecretValue', otherSecret), `${name} reads no other secret`);
      assert.ok(!can(doc, 'secretsmanager:PutSecretValue', secretArn), `${name} cannot change the API key`);
      assert.ok(!can(doc, 'iot:UpdateCertificate', arn('iot', 'cert/abc')), `${name} has no AWS IoT rights`);
      const env = ((f.props.Environment as { Variables: Record<string, Json> }).Variables ?? {}) as Record<string, Json>;
      const readsSecret = name !== 'ocsp';
      assert.equal(can(doc, 'secretsmanager:GetSecretValue', secretArn), readsSecret, `${name} ${readsSecret ? 'reads' : 'does not read'} the API key secret`);
      assert.equal(env.FLEET_PKI_API_KEY_SECRET_ID !== undefined, readsSecret, `${name}: FLEET_PKI_API_KEY_SECRET_ID`);
      if (readsSecret) assert.equal(resolve(env.FLEET_PKI_API_KEY_SECRET_ID, t), secretArn, `${name} is told the secret it may read`);
      for (const variable of Object.keys(env)) assert.doesNotMatch(variable, /^FLEET_PKI_API_KEY$|PASSWORD|TOKEN/, `${name}: no secret value in the environment`);
    }
  });

  it('gives the provisioning role only what RegisterThing needs for the template', () => {
    const [[templateId, templateResource]] = ofType(t, 'AWS::IoT::ProvisioningTemplate');
    const roleId = (templateResource.Properties!.ProvisioningRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const doc = rolePolicy(t, roleId);
    const devicePolicy = String(t.Parameters!.DevicePolicyName.Default);
    for (const [action, resource] of [
      ['iot:CreateThing', arn('iot', 'thing/SN-0001')],
      ['iot:DescribeThing', arn('iot', 'thing/SN-0001')],
      ['iot:UpdateCertificate', arn('iot', 'cert/0123abcd')],
      ['iot:DescribeCertificate', arn('iot', 'cert/0123abcd')],
      ['iot:AttachPolicy', arn('iot', 'cert/0123abcd')],
      ['iot:GetPolicy', arn('iot', `policy/${devicePolicy}`)],
      ['iot:AttachThingPrincipal', '*'],
    ]) {
      assert.ok(can(doc, action, resource), `${templateId} role may ${action} on ${resource}`);
    }
    for (const [action, resource] of [
      ['iot:GetPolicy', arn('iot', 'policy/admin-everything')],
      ['iot:DeleteThing', arn('iot', 'thing/SN-0001')],
      ['iot:DeleteCertificate', arn('iot', 'cert/0123abcd')],
      ['iot:CreatePolicy', arn('iot', 'policy/x')],
      ['iot:UpdateCACertificate', arn('iot', 'cacert/abc')],
      ['iot:CreateThing', arn('iot', 'thing/SN-0001', 'us-east-1')],
      ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/x`],
    ]) {
      assert.ok(!can(doc, action, resource), `${templateId} role must not ${action} on ${resource}`);
    }
  });

  it('lets only AWS IoT in this account invoke the functions, each from its own resource', () => {
    const permissions = ofType(t, 'AWS::Lambda::Permission');
    const byFunction = new Map<string, Record<string, Json>>();
    for (const [id, p] of permissions) {
      const props = p.Properties!;
      assert.equal(props.Action, 'lambda:InvokeFunction', id);
      assert.equal(props.Principal, 'iot.amazonaws.com', `${id}: AWS IoT only`);
      assert.equal(resolve(props.SourceAccount, t), ACCOUNT, `${id}: SourceAccount`);
      const sourceArn = String(resolve(props.SourceArn, t));
      assert.match(sourceArn, new RegExp(`^arn:aws:iot:${REGION}:${ACCOUNT}:(certificateprovider|domainconfiguration)/[\\w.=,@-]+(/\\*)?$`), `${id}: SourceArn ${sourceArn}`);
      const target = (props.FunctionName as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      assert.ok(!byFunction.has(target), `one permission per function (${target})`);
      byFunction.set(target, { ...props, SourceArn: sourceArn });
    }
    const provider = fn(t, 'CertificateProvider');
    const check = fn(t, 'ClientCertificateCheck');
    const ocsp = fn(t, 'OcspStaple');
    assert.match(String(byFunction.get(provider.id)?.SourceArn), /:certificateprovider\/[\w=,@-]+$/, 'the certificate provider, by name');
    assert.match(String(byFunction.get(check.id)?.SourceArn), /:domainconfiguration\/[\w.-]+\/\*$/, 'the domain configuration');
    const domain = ofType(t, 'AWS::IoT::DomainConfiguration')[0][1].Properties!;
    assert.ok(domain.ServerCertificateConfig, `deploy/cdk.out is not the custom-domain variant: ${HOW_TO}`);
    assert.match(String(byFunction.get(ocsp.id)?.SourceArn), /:domainconfiguration\/[\w.-]+\/\*$/, 'the custom domain configuration');
    const statementsAboutInvoke = identityPolicies(t).flatMap((p) => p.doc.Statement).filter((s) => asList(s.Action).some((a) => a.startsWith('lambda:')));
    assert.deepEqual(statementsAboutInvoke, [], 'no role may invoke the functions');
  });

  it('runs the three functions on Node 22 or 24 from the build:lambdas zips, with bounded timeouts', () => {
    const functions = ofType(t, 'AWS::Lambda::Function');
    assert.equal(functions.length, 3);
    for (const [id, f] of functions) {
      const props = f.Properties!;
      assert.ok(['nodejs22.x', 'nodejs24.x'].includes(String(props.Runtime)), `${id}: ${props.Runtime}`);
      assert.equal(props.Handler, 'index.handler');
      assert.match(String((props.Code as { S3Key: string }).S3Key), /^[0-9a-f]{64}\.zip$/, `${id}: the zip, as an asset`);
      assert.ok(Number(props.Timeout) > 0 && Number(props.Timeout) <= 30, `${id}: timeout ${props.Timeout}s`);
      assert.ok((props.LoggingConfig as { LogGroup?: unknown }).LogGroup, `${id}: its own log group`);
    }
    for (const [id, g] of ofType(t, 'AWS::Logs::LogGroup')) assert.ok(Number(g.Properties!.RetentionInDays) > 0, `${id}: logs expire`);
  });

  it('wires the certificate provider, the provisioning template and the domain configuration to the right functions', () => {
    const provider = ofType(t, 'AWS::IoT::CertificateProvider');
    assert.equal(provider.length, 1, 'one certificate provider (AWS allows one per account)');
    const providerProps = provider[0][1].Properties!;
    assert.deepEqual(providerProps.AccountDefaultForOperations, ['CreateCertificateFromCsr']);
    assert.equal((providerProps.LambdaFunctionArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0], fn(t, 'CertificateProvider').id);

    const [[, templateResource]] = ofType(t, 'AWS::IoT::ProvisioningTemplate');
    assert.equal(templateResource.Properties!.TemplateType, 'FLEET_PROVISIONING');
    const body = JSON.parse(String(resolve(templateResource.Properties!.TemplateBody, t))) as { Parameters: Record<string, unknown>; Resources: Record<string, { Type: string; Properties: Record<string, Json> }> };
    // The thing name is bound to the certificate Fleet PKI issued (its CN = Fleet PKI's thingName), never a parameter
    // the device chooses: the template declares no device parameter at all.
    assert.deepEqual(Object.keys(body.Parameters).sort(), ['AWS::IoT::Certificate::CommonName', 'AWS::IoT::Certificate::Id']);
    const types = Object.values(body.Resources).map((r) => r.Type).sort();
    assert.deepEqual(types, ['AWS::IoT::Certificate', 'AWS::IoT::Policy', 'AWS::IoT::Thing']);
    const byType = (type: string) => Object.values(body.Resources).find((r) => r.Type === type)!.Properties;
    assert.deepEqual(byType('AWS::IoT::Thing').ThingName, { Ref: 'AWS::IoT::Certificate::CommonName' });
    assert.equal(byType('AWS::IoT::Certificate').Status, 'ACTIVE');
    assert.equal(byType('AWS::IoT::Policy').PolicyName, t.Parameters!.DevicePolicyName.Default);
    const tags = (templateResource.Properties!.Tags ?? []) as { Key: string; Value: Json }[];
    assert.ok(tags.some((tag) => tag.Key === 'fleet-pki:claim-id'), 'bound to the Fleet PKI claim');

    const [[, domainResource]] = ofType(t, 'AWS::IoT::DomainConfiguration');
    const domain = domainResource.Properties!;
    assert.equal(domain.AuthenticationType, 'AWS_X509');
    assert.equal((domain.ClientCertificateConfig as { ClientCertificateCallbackArn: { 'Fn::GetAtt': string[] } }).ClientCertificateCallbackArn['Fn::GetAtt'][0], fn(t, 'ClientCertificateCheck').id);
    // Which variant is checked is asserted, not assumed: synth:ci synthesizes the custom-domain one (the stapling
    // wiring below); a template synthesized without a domain would otherwise pass these checks silently.
    assert.ok(domain.ServerCertificateConfig, `deploy/cdk.out is not the custom-domain variant: ${HOW_TO}`);
    const server = domain.ServerCertificateConfig as { OcspLambdaArn: { 'Fn::GetAtt': string[] }; EnableOCSPCheck: boolean };
    assert.equal(server.OcspLambdaArn['Fn::GetAtt'][0], fn(t, 'OcspStaple').id);
    assert.equal(server.EnableOCSPCheck, true);
    assert.ok(domain.DomainName && asList(domain.ServerCertificateArns as string[]).length === 1);
  });

  it('lets the shared claim certificate connect only with a client id under the claim prefix', () => {
    const [[, claimPolicy]] = ofType(t, 'AWS::IoT::Policy');
    const statements = (claimPolicy.Properties!.PolicyDocument as { Statement: { Action: string | string[]; Resource: Json }[] }).Statement;
    const connect = statements.filter((s) => asList(s.Action as string[]).includes('iot:Connect'));
    assert.equal(connect.length, 1);
    const resources = asList(connect[0].Resource as string[]).map((r) => String(resolve(r as Json, t)));
    assert.equal(resources.length, 1);
    assert.match(resources[0], /:client\/provision-\*$/, 'the default prefix, never client/*');
  });
});

const TSX = path.join(root, 'deploy', 'node_modules', '.bin', 'tsx');

/** Runs the CDK app as the cdk CLI does (context in CDK_CONTEXT_JSON, output in CDK_OUTDIR); offline. */
function runApp(context: Record<string, string>): Promise<{ status: number; output: string }> {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-cdk-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: outdir, CDK_DISABLE_VERSION_CHECK: '1' };
  return new Promise((resolve) => {
    execFile(TSX, ['bin/fleet-pki-aws.ts'], { cwd: path.join(root, 'deploy'), env, timeout: 60_000 }, (err, stdout, stderr) => {
      fs.rmSync(outdir, { recursive: true, force: true });
      resolve({ status: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('deploy kit: the CDK app refuses bad settings before building anything', { skip: fs.existsSync(TSX) ? false : `deploy/node_modules is absent: ${HOW_TO}` }, () => {
  it('refuses a custom domain without its server certificate, naming both context keys', async () => {
    const result = await runApp({ domainName: 'iot.example.com', lambdaZipDir: path.join(root, 'dist-lambdas') });
    assert.notEqual(result.status, 0);
    assert.match(result.output, /context "domainName" and "serverCertificateArn" go together/);
  });

  it('refuses to synthesize without the Lambda zips, telling how to build them', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-no-zips-'));
    try {
      const result = await runApp({ lambdaZipDir: empty });
      assert.notEqual(result.status, 0);
      assert.match(result.output, /certificate-provider\.zip is missing: run `npm run build:lambdas`/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
